//! casnix's own data, in `casnix.sqlite` beside Nix's database: the castore root of each store
//! path (an opaque encoding of its root node, supplied by the castore layer), bound to the NAR
//! hash that root renders to.
//!
//! Crash consistency with Nix's database (see the module documentation of [`crate::db`]): a root
//! is written before its path is registered, deleted after its path is invalidated, and only
//! trusted while Nix's database has the path valid with the same NAR hash.

use std::collections::BTreeSet;

use nix_formats::hash::Hash;
use nix_formats::store_path::StorePath;
use rusqlite::{params, Connection, OptionalExtension};

use super::encode::{hash_text, parse_hash};
use super::error::DbError;
use super::queries::path_info;
use super::retry::{in_transaction, TxnKind};
use super::Db;

/// The largest castore root accepted, in bytes (a root node is a few hundred bytes at most).
pub const MAX_CASTORE_ROOT_LEN: usize = 1 << 20;

/// The castore root of one store path, as recorded before registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastoreRoot {
    /// The store path.
    pub path: StorePath,
    /// The NAR hash (SHA-256) of the contents the root describes.
    pub nar_hash: Hash,
    /// The root node's encoding.
    pub root: Vec<u8>,
}

impl Db {
    fn with_casnix<T>(
        &self,
        kind: TxnKind,
        body: impl FnMut(&rusqlite::Connection) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        if kind == TxnKind::Write {
            self.require_writable()?;
        }
        let Some(mutex) = &self.casnix else {
            return Ok(None);
        };
        let mut conn = mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        in_transaction(&mut conn, kind, self.busy_timeout, &self.casnix_db_path(), body).map(Some)
    }

    /// Records the castore root of `path` (replacing any earlier one). Call it before
    /// registering the path in Nix's database.
    pub fn set_castore_root(&self, path: &StorePath, nar_hash: &Hash, root: &[u8]) -> Result<(), DbError> {
        self.set_castore_roots(&[CastoreRoot { path: path.clone(), nar_hash: nar_hash.clone(), root: root.to_vec() }])
    }

    /// Records several castore roots in one transaction (see [`Db::set_castore_root`]).
    pub fn set_castore_roots(&self, roots: &[CastoreRoot]) -> Result<(), DbError> {
        for r in roots {
            if r.root.len() > MAX_CASTORE_ROOT_LEN {
                return Err(DbError::CastoreRootTooLarge { path: self.store_dir.print(&r.path), len: r.root.len() });
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.with_casnix(TxnKind::Write, |txn| {
            for r in roots {
                txn.prepare_cached(
                    "insert or replace into CastoreRoots (path, narHash, root, recorded) values (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![self.store_dir.print(&r.path), hash_text(&r.nar_hash), r.root, now]))
                .map_err(DbError::sqlite("recording a castore root"))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The castore root of `path`, if one is recorded *and* Nix's database has the path valid
    /// with the NAR hash the root was recorded for. Anything else (no root, path not valid, path
    /// replaced by other contents) gives `None`.
    pub fn castore_root(&self, path: &StorePath) -> Result<Option<Vec<u8>>, DbError> {
        let Some(valid_hash) = self.read(|c| Ok(path_info(c, &self.store_dir, path)?.map(|(_, info)| info.nar_hash)))?
        else {
            return Ok(None);
        };
        let printed = self.store_dir.print(path);
        let recorded = self
            .with_casnix(TxnKind::Read, |txn| recorded_root(txn, &printed))?
            .flatten();
        match recorded {
            Some((hash, root)) if parse_hash(&printed, &hash)? == valid_hash => Ok(Some(root)),
            _ => Ok(None),
        }
    }

    /// Deletes the castore roots of `paths`; returns how many there were.
    pub fn remove_castore_roots<'a>(&self, paths: impl IntoIterator<Item = &'a StorePath>) -> Result<usize, DbError> {
        let printed: Vec<String> = paths.into_iter().map(|p| self.store_dir.print(p)).collect();
        if printed.is_empty() {
            return Ok(0);
        }
        let removed = self.with_casnix(TxnKind::Write, |txn| {
            let mut n = 0;
            for p in &printed {
                n += txn
                    .prepare_cached("delete from CastoreRoots where path = ?1")
                    .and_then(|mut s| s.execute([p]))
                    .map_err(DbError::sqlite("deleting a castore root"))?;
            }
            Ok(n)
        })?;
        Ok(removed.unwrap_or(0))
    }

    /// Deletes every castore root that Nix's database does not back: its path is not valid, or
    /// valid with another NAR hash. Returns how many were deleted. Meant for start-up and garbage
    /// collection; a root written by a concurrent add whose path is not registered yet would be
    /// deleted too, which costs that path its root but never yields a wrong one.
    pub fn reconcile_castore_roots(&self) -> Result<usize, DbError> {
        let recorded: Vec<(String, String)> = self
            .with_casnix(TxnKind::Read, |txn| {
                txn.prepare_cached("select path, narHash from CastoreRoots")
                    .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>())
                    .map_err(DbError::sqlite("listing castore roots"))
            })?
            .unwrap_or_default();
        let stale: BTreeSet<(String, String)> = self.read(|c| {
            let mut stale = BTreeSet::new();
            for (path, hash) in &recorded {
                let current: Option<String> = c
                    .prepare_cached("select hash from ValidPaths where path = ?1")
                    .and_then(|mut s| s.query_row([path], |r| r.get(0)).optional())
                    .map_err(DbError::sqlite("checking a castore root"))?;
                let backed = match current {
                    Some(current) => same_hash(path, &current, hash),
                    None => false,
                };
                if !backed {
                    stale.insert((path.clone(), hash.clone()));
                }
            }
            Ok(stale)
        })?;
        if stale.is_empty() {
            return Ok(0);
        }
        let removed = self.with_casnix(TxnKind::Write, |txn| {
            let mut n = 0;
            for (path, hash) in &stale {
                n += txn
                    .prepare_cached("delete from CastoreRoots where path = ?1 and narHash = ?2")
                    .and_then(|mut s| s.execute([path, hash]))
                    .map_err(DbError::sqlite("deleting a castore root"))?;
            }
            Ok(n)
        })?;
        Ok(removed.unwrap_or(0))
    }
}

/// Whether two stored hash texts name the same hash (a root with an unreadable hash is stale).
fn same_hash(path: &str, a: &str, b: &str) -> bool {
    match (parse_hash(path, a), parse_hash(path, b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn recorded_root(conn: &Connection, printed: &str) -> Result<Option<(String, Vec<u8>)>, DbError> {
    conn.prepare_cached("select narHash, root from CastoreRoots where path = ?1")
        .and_then(|mut s| s.query_row([printed], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(DbError::sqlite("reading a castore root"))
}
