//! Reading Nix's database: path infos, references and referrers, derivers and derivation outputs,
//! lookups by hash part, closures. The statements are the ones Nix uses, so the answers are the
//! ones `nix-store -q` gives.

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath, HASH_PART_LEN};
use rusqlite::{Connection, OptionalExtension};

use super::closure::{reachable, topo_sort, ClosureOptions};
use super::encode::{parse_path, path_row_columns, PathRow};
use super::error::DbError;
use super::Db;

/// The row id of `path` in `ValidPaths`, if it is valid.
pub(crate) fn path_id(conn: &Connection, store_dir: &StoreDir, path: &StorePath) -> Result<Option<i64>, DbError> {
    conn.prepare_cached("select id from ValidPaths where path = ?1")
        .and_then(|mut s| s.query_row([store_dir.print(path)], |r| r.get(0)).optional())
        .map_err(DbError::sqlite("looking up a path"))
}

/// The row id of `path`, or [`DbError::InvalidPath`].
pub(crate) fn valid_path_id(conn: &Connection, store_dir: &StoreDir, path: &StorePath) -> Result<i64, DbError> {
    path_id(conn, store_dir, path)?.ok_or_else(|| DbError::InvalidPath(store_dir.print(path)))
}

/// The row id and info (with references) of `path`, if it is valid.
pub(crate) fn path_info(
    conn: &Connection,
    store_dir: &StoreDir,
    path: &StorePath,
) -> Result<Option<(i64, ValidPathInfo)>, DbError> {
    let row = conn
        .prepare_cached(concat!("select ", path_row_columns!(), " from ValidPaths where path = ?1"))
        .and_then(|mut s| s.query_row([store_dir.print(path)], PathRow::from_row).optional())
        .map_err(DbError::sqlite("querying path info"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id = row.id;
    let mut info = row.into_info(store_dir, path.clone())?;
    info.references = references_of(conn, store_dir, id)?;
    Ok(Some((id, info)))
}

/// The references of the path with row id `id`.
pub(crate) fn references_of(conn: &Connection, store_dir: &StoreDir, id: i64) -> Result<BTreeSet<StorePath>, DbError> {
    paths_from(conn, store_dir, "select path from Refs join ValidPaths on reference = id where referrer = ?1", id)
}

/// The valid paths that refer to `path` (including itself, if it refers to itself).
pub(crate) fn referrers_of(conn: &Connection, store_dir: &StoreDir, path: &StorePath) -> Result<BTreeSet<StorePath>, DbError> {
    paths_from(
        conn,
        store_dir,
        "select path from Refs join ValidPaths on referrer = id \
         where reference = (select id from ValidPaths where path = ?1)",
        store_dir.print(path),
    )
}

/// Runs a query whose single column is a full store path.
fn paths_from(
    conn: &Connection,
    store_dir: &StoreDir,
    sql: &str,
    param: impl rusqlite::ToSql,
) -> Result<BTreeSet<StorePath>, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(DbError::sqlite("preparing a query"))?;
    let texts = stmt
        .query_map([param], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DbError::sqlite("querying paths"))?;
    texts.iter().map(|t| parse_path(store_dir, t)).collect()
}

/// The output map recorded for the derivation with row id `drv_id`.
pub(crate) fn derivation_outputs_of(
    conn: &Connection,
    store_dir: &StoreDir,
    drv_id: i64,
) -> Result<BTreeMap<String, StorePath>, DbError> {
    let mut stmt = conn
        .prepare_cached("select id, path from DerivationOutputs where drv = ?1")
        .map_err(DbError::sqlite("preparing a query"))?;
    let rows = stmt
        .query_map([drv_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DbError::sqlite("querying derivation outputs"))?;
    rows.into_iter().map(|(name, path)| Ok((name, parse_path(store_dir, &path)?))).collect()
}

/// The valid derivations that list `path` as an output.
pub(crate) fn valid_derivers_of(
    conn: &Connection,
    store_dir: &StoreDir,
    path: &StorePath,
) -> Result<BTreeSet<StorePath>, DbError> {
    paths_from(
        conn,
        store_dir,
        "select v.path from DerivationOutputs d join ValidPaths v on d.drv = v.id where d.path = ?1",
        store_dir.print(path),
    )
}

/// The paths one closure step reaches from `path` (Nix's `computeFSClosure` edges).
fn closure_edges(
    conn: &Connection,
    store_dir: &StoreDir,
    path: &StorePath,
    options: ClosureOptions,
) -> Result<BTreeSet<StorePath>, DbError> {
    let (id, info) = path_info(conn, store_dir, path)?.ok_or_else(|| DbError::InvalidPath(store_dir.print(path)))?;
    let mut next = BTreeSet::new();
    let valid_outputs = |next: &mut BTreeSet<StorePath>| -> Result<(), DbError> {
        for out in derivation_outputs_of(conn, store_dir, id)?.into_values() {
            if path_id(conn, store_dir, &out)?.is_some() {
                next.insert(out);
            }
        }
        Ok(())
    };
    if options.flip_direction {
        next.extend(referrers_of(conn, store_dir, path)?.into_iter().filter(|r| r != path));
        if options.include_outputs {
            next.extend(valid_derivers_of(conn, store_dir, path)?);
        }
        if options.include_derivers && path.is_derivation() {
            valid_outputs(&mut next)?;
        }
    } else {
        next.extend(info.references.iter().filter(|r| *r != path).cloned());
        if options.include_outputs && path.is_derivation() {
            valid_outputs(&mut next)?;
        }
        if options.include_derivers {
            if let Some(deriver) = &info.deriver {
                if path_id(conn, store_dir, deriver)?.is_some() {
                    next.insert(deriver.clone());
                }
            }
        }
    }
    Ok(next)
}

impl Db {
    /// The info of `path`, with its references, or `None` if it is not valid.
    pub fn query_path_info(&self, path: &StorePath) -> Result<Option<ValidPathInfo>, DbError> {
        self.read(|c| Ok(path_info(c, &self.store_dir, path)?.map(|(_, info)| info)))
    }

    /// Whether `path` is valid.
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, DbError> {
        self.read(|c| Ok(path_id(c, &self.store_dir, path)?.is_some()))
    }

    /// The valid ones among `paths`.
    pub fn query_valid_paths<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<BTreeSet<StorePath>, DbError> {
        let paths: Vec<&StorePath> = paths.into_iter().collect();
        self.read(|c| {
            let mut valid = BTreeSet::new();
            for p in &paths {
                if path_id(c, &self.store_dir, p)?.is_some() {
                    valid.insert((*p).clone());
                }
            }
            Ok(valid)
        })
    }

    /// Every valid path.
    pub fn query_all_valid_paths(&self) -> Result<BTreeSet<StorePath>, DbError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("select path from ValidPaths").map_err(DbError::sqlite("preparing a query"))?;
            let texts = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(DbError::sqlite("listing valid paths"))?;
            texts.iter().map(|t| parse_path(&self.store_dir, t)).collect()
        })
    }

    /// The references of `path`; [`DbError::InvalidPath`] if it is not valid.
    pub fn query_references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, DbError> {
        self.read(|c| {
            let id = valid_path_id(c, &self.store_dir, path)?;
            references_of(c, &self.store_dir, id)
        })
    }

    /// The valid paths that refer to `path` (itself included if it refers to itself); empty if
    /// `path` is not valid.
    pub fn query_referrers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, DbError> {
        self.read(|c| referrers_of(c, &self.store_dir, path))
    }

    /// The valid derivations that have `path` as an output (Nix's `queryValidDerivers`).
    pub fn query_valid_derivers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, DbError> {
        self.read(|c| valid_derivers_of(c, &self.store_dir, path))
    }

    /// The outputs recorded for the valid derivation `drv` (name → path; outputs whose path is
    /// not known in advance are absent); [`DbError::InvalidPath`] if `drv` is not valid.
    pub fn query_derivation_outputs(&self, drv: &StorePath) -> Result<BTreeMap<String, StorePath>, DbError> {
        self.read(|c| {
            let id = valid_path_id(c, &self.store_dir, drv)?;
            derivation_outputs_of(c, &self.store_dir, id)
        })
    }

    /// The valid path whose hash part is `hash_part`, if any (Nix's `queryPathFromHashPart`);
    /// [`DbError::InvalidHashPart`] unless it has 32 characters.
    pub fn query_path_from_hash_part(&self, hash_part: &str) -> Result<Option<StorePath>, DbError> {
        if hash_part.len() != HASH_PART_LEN {
            return Err(DbError::InvalidHashPart(hash_part.chars().take(100).collect()));
        }
        let prefix = format!("{}/{}", self.store_dir.as_str(), hash_part);
        let found: Option<String> = self.read(|c| {
            c.prepare_cached("select path from ValidPaths where path >= ?1 limit 1")
                .and_then(|mut s| s.query_row([&prefix], |r| r.get(0)).optional())
                .map_err(DbError::sqlite("looking up a hash part"))
        })?;
        match found {
            Some(text) if text.starts_with(&prefix) => Ok(Some(parse_path(&self.store_dir, &text)?)),
            _ => Ok(None),
        }
    }

    /// The closure of `paths` (Nix's `computeFSClosure`): with default options the requisites
    /// (`nix-store -qR`), the start paths included. Every path reached must be valid, else
    /// [`DbError::InvalidPath`]. Read in one snapshot.
    pub fn closure<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
        options: ClosureOptions,
    ) -> Result<BTreeSet<StorePath>, DbError> {
        let start: Vec<StorePath> = paths.into_iter().cloned().collect();
        self.read(|c| reachable(start.iter().cloned(), |p| closure_edges(c, &self.store_dir, p, options)))
    }

    /// Sorts `paths` with Nix's topological order over their references in the database:
    /// referrers before their references. [`DbError::Cycle`] if references form a cycle;
    /// [`DbError::InvalidPath`] if a path is not valid.
    pub fn topo_sort_paths(&self, paths: &BTreeSet<StorePath>) -> Result<Vec<StorePath>, DbError> {
        let refs: BTreeMap<StorePath, BTreeSet<StorePath>> = self.read(|c| {
            paths
                .iter()
                .map(|p| {
                    let id = valid_path_id(c, &self.store_dir, p)?;
                    Ok((p.clone(), references_of(c, &self.store_dir, id)?))
                })
                .collect()
        })?;
        topo_sort(paths, |p| refs.get(p).cloned().unwrap_or_default()).map_err(|cycle| DbError::Cycle {
            path: self.store_dir.print(&cycle.path),
            parent: self.store_dir.print(&cycle.parent),
        })
    }
}
