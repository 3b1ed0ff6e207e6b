//! Writing Nix's database: registering valid paths (many at once, in one transaction), adding
//! signatures, invalidating paths. Semantics follow Nix's `registerValidPaths`, `addValidPath`,
//! `updatePathInfo`, `addSignatures` and `invalidatePathChecked`.
//!
//! The caller has already written each path's contents under a temporary name, fsynced them and
//! renamed them into place; registering is the last step that makes the paths valid.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use nix_formats::derivation::Derivation;
use nix_formats::hash::Algorithm;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;
use rusqlite::{params, Connection};

use super::closure::topo_sort;
use super::encode::{hash_text, sigs_text, to_i64};
use super::error::DbError;
use super::queries::{path_id, path_info, referrers_of};
use super::Db;

/// One path of a registration, checked and prepared before the transaction starts.
struct Prepared<'a> {
    info: &'a ValidPathInfo,
    /// The path's registration time (now, if the info says 0).
    registration_time: i64,
    nar_size: Option<i64>,
    /// For a `.drv` whose derivation was supplied: its outputs with known paths.
    drv_outputs: Option<Vec<(String, String)>>,
    /// Whether a claimed content address matches the path (true if none is claimed).
    ca_ok: bool,
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Db {
    /// Registers `infos` as valid in one transaction (Nix's `registerValidPaths`).
    ///
    /// - A path that is already valid gets Nix's `UpdatePathInfo`: NAR size, NAR hash, ultimate,
    ///   signatures and content address are replaced; deriver and registration time stay.
    /// - A new path is inserted (registration time 0 means now), after checking that a claimed
    ///   content address matches its path ([`DbError::NotContentAddressed`]). A new `.drv`
    ///   path needs its parsed derivation in `derivations` ([`DbError::MissingDerivation`]),
    ///   which must be the one that produces that path ([`DbError::DerivationMismatch`]); its
    ///   outputs with known paths go to `DerivationOutputs`.
    /// - References are added after every path of the batch exists, so paths may refer to each
    ///   other and to themselves; every reference must be valid or in the batch
    ///   ([`DbError::InvalidReference`]). References are only added, never removed.
    /// - Paths are inserted references-first, and a cycle between distinct paths is refused
    ///   ([`DbError::Cycle`]), as in Nix.
    ///
    /// NAR hashes must be SHA-256; a path may appear once. On any error nothing is written.
    pub fn register_valid_paths(
        &self,
        infos: &[ValidPathInfo],
        derivations: &BTreeMap<StorePath, Derivation>,
    ) -> Result<(), DbError> {
        self.require_writable()?;
        let prepared = self.prepare(infos, derivations)?;
        self.write(|txn| {
            for p in &prepared {
                self.add_or_update(txn, p)?;
            }
            for p in &prepared {
                self.add_references(txn, p.info)?;
            }
            Ok(())
        })
    }

    /// Registers one path (see [`Db::register_valid_paths`]); `derivation` is needed for a new
    /// `.drv` path.
    pub fn register_valid_path(&self, info: &ValidPathInfo, derivation: Option<&Derivation>) -> Result<(), DbError> {
        let derivations = derivation.map(|d| (info.path.clone(), d.clone())).into_iter().collect();
        self.register_valid_paths(std::slice::from_ref(info), &derivations)
    }

    /// Checks the batch and orders it references-first, before any database work.
    fn prepare<'a>(
        &self,
        infos: &'a [ValidPathInfo],
        derivations: &BTreeMap<StorePath, Derivation>,
    ) -> Result<Vec<Prepared<'a>>, DbError> {
        let mut by_path: BTreeMap<&StorePath, &ValidPathInfo> = BTreeMap::new();
        for info in infos {
            if by_path.insert(&info.path, info).is_some() {
                return Err(DbError::DuplicatePath(self.store_dir.print(&info.path)));
            }
            if info.nar_hash.algorithm() != Algorithm::Sha256 {
                return Err(DbError::NarHashNotSha256 {
                    path: self.store_dir.print(&info.path),
                    algorithm: info.nar_hash.algorithm().to_string(),
                });
            }
        }
        let batch: BTreeSet<StorePath> = by_path.keys().map(|p| (*p).clone()).collect();
        let order = topo_sort(&batch, |p| by_path.get(p).map(|i| i.references.clone()).unwrap_or_default())
            .map_err(|c| DbError::Cycle { path: self.store_dir.print(&c.path), parent: self.store_dir.print(&c.parent) })?;
        let now = now_seconds();
        // Insert references before their referrers, so row ids follow the dependency order.
        order
            .iter()
            .rev()
            .filter_map(|p| by_path.get(p).copied())
            .map(|info| {
                let registration_time = match info.registration_time {
                    0 => now,
                    t => to_i64(t, &info.path, "registrationTime")?,
                };
                let nar_size = match info.nar_size {
                    0 => None,
                    n => Some(to_i64(n, &info.path, "narSize")?),
                };
                let drv_outputs = match derivations.get(&info.path) {
                    Some(drv) if info.path.is_derivation() => Some(self.derivation_outputs(&info.path, drv)?),
                    _ => None,
                };
                let ca_ok = info.ca.is_none() || info.is_content_addressed(&self.store_dir);
                Ok(Prepared { info, registration_time, nar_size, drv_outputs, ca_ok })
            })
            .collect()
    }

    /// The `DerivationOutputs` rows for `drv` registered as `path`, after checking that `drv` is
    /// the derivation of that path.
    fn derivation_outputs(&self, path: &StorePath, drv: &Derivation) -> Result<Vec<(String, String)>, DbError> {
        let printed = self.store_dir.print(path);
        let actual = drv
            .drv_path(&self.store_dir)
            .map_err(|source| DbError::DerivationPath { path: printed.clone(), source })?;
        if &actual != path {
            return Err(DbError::DerivationMismatch { path: printed, actual: self.store_dir.print(&actual) });
        }
        let outputs = drv
            .output_paths(&self.store_dir)
            .map_err(|source| DbError::DerivationOutput { path: printed, source })?;
        Ok(outputs
            .into_iter()
            .filter_map(|(name, out)| out.map(|o| (name, self.store_dir.print(&o))))
            .collect())
    }

    fn add_or_update(&self, conn: &Connection, p: &Prepared<'_>) -> Result<(), DbError> {
        let info = p.info;
        let printed = self.store_dir.print(&info.path);
        let ultimate = info.ultimate.then_some(1i64);
        let sigs = sigs_text(&info.sigs);
        let ca = info.ca.as_ref().map(ToString::to_string);
        if path_id(conn, &self.store_dir, &info.path)?.is_some() {
            conn.prepare_cached("update ValidPaths set narSize = ?1, hash = ?2, ultimate = ?3, sigs = ?4, ca = ?5 where path = ?6")
                .and_then(|mut s| s.execute(params![p.nar_size, hash_text(&info.nar_hash), ultimate, sigs, ca, printed]))
                .map_err(DbError::sqlite("updating path info"))?;
            return Ok(());
        }
        if !p.ca_ok {
            return Err(DbError::NotContentAddressed(printed));
        }
        if info.path.is_derivation() && p.drv_outputs.is_none() {
            return Err(DbError::MissingDerivation(printed));
        }
        let deriver = info.deriver.as_ref().map(|d| self.store_dir.print(d));
        conn.prepare_cached(
            "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![printed, hash_text(&info.nar_hash), p.registration_time, deriver, p.nar_size, ultimate, sigs, ca])
        })
        .map_err(DbError::sqlite("registering a valid path"))?;
        let id = conn.last_insert_rowid();
        for (name, out) in p.drv_outputs.iter().flatten() {
            conn.prepare_cached("insert or replace into DerivationOutputs (drv, id, path) values (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![id, name, out]))
                .map_err(DbError::sqlite("recording a derivation output"))?;
        }
        Ok(())
    }

    fn add_references(&self, conn: &Connection, info: &ValidPathInfo) -> Result<(), DbError> {
        let referrer = path_id(conn, &self.store_dir, &info.path)?
            .ok_or_else(|| DbError::InvalidPath(self.store_dir.print(&info.path)))?;
        for reference in &info.references {
            let target = path_id(conn, &self.store_dir, reference)?.ok_or_else(|| DbError::InvalidReference {
                path: self.store_dir.print(&info.path),
                reference: self.store_dir.print(reference),
            })?;
            conn.prepare_cached("insert or replace into Refs (referrer, reference) values (?1, ?2)")
                .and_then(|mut s| s.execute([referrer, target]))
                .map_err(DbError::sqlite("adding a reference"))?;
        }
        Ok(())
    }

    /// Adds signatures to a valid path (Nix's `addSignatures`); [`DbError::InvalidPath`] if it is
    /// not valid.
    pub fn add_signatures(&self, path: &StorePath, sigs: &BTreeSet<String>) -> Result<(), DbError> {
        self.write(|txn| {
            let (_, mut info) =
                path_info(txn, &self.store_dir, path)?.ok_or_else(|| DbError::InvalidPath(self.store_dir.print(path)))?;
            info.sigs.extend(sigs.iter().cloned());
            let nar_size = match info.nar_size {
                0 => None,
                n => Some(to_i64(n, path, "narSize")?),
            };
            txn.prepare_cached("update ValidPaths set narSize = ?1, hash = ?2, ultimate = ?3, sigs = ?4, ca = ?5 where path = ?6")
                .and_then(|mut s| {
                    s.execute(params![
                        nar_size,
                        hash_text(&info.nar_hash),
                        info.ultimate.then_some(1i64),
                        sigs_text(&info.sigs),
                        info.ca.as_ref().map(ToString::to_string),
                        self.store_dir.print(path)
                    ])
                })
                .map_err(DbError::sqlite("updating signatures"))?;
            Ok(())
        })
    }

    /// Invalidates `paths` in one transaction. Paths that are not valid are skipped. A path
    /// referred to by a valid path outside `paths` is refused ([`DbError::PathInUse`]) and nothing
    /// is changed. Derivation outputs and realisations of the paths go with them (by cascade).
    /// Afterwards their castore roots are deleted from casnix's file: if that fails, the paths are
    /// nevertheless invalid (and the stale roots are ignored by [`Db::castore_root`]).
    /// Returns the paths that were valid and are now invalid.
    pub fn invalidate_paths<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<BTreeSet<StorePath>, DbError> {
        let set: BTreeSet<StorePath> = paths.into_iter().cloned().collect();
        let removed = self.write(|txn| {
            let mut ids = Vec::new();
            for path in &set {
                let Some(id) = path_id(txn, &self.store_dir, path)? else {
                    continue;
                };
                let outside: Vec<String> = referrers_of(txn, &self.store_dir, path)?
                    .into_iter()
                    .filter(|r| !set.contains(r))
                    .map(|r| self.store_dir.print(&r))
                    .collect();
                if !outside.is_empty() {
                    return Err(DbError::PathInUse { path: self.store_dir.print(path), referrers: outside });
                }
                ids.push((path.clone(), id));
            }
            // Drop the set's own references first, so that the order of deletion within the set
            // cannot trip the `on delete restrict` of Refs.reference.
            for (_, id) in &ids {
                txn.prepare_cached("delete from Refs where referrer = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(DbError::sqlite("deleting references"))?;
            }
            for (_, id) in &ids {
                txn.prepare_cached("delete from ValidPaths where id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(DbError::sqlite("invalidating a path"))?;
            }
            Ok(ids.into_iter().map(|(p, _)| p).collect::<BTreeSet<_>>())
        })?;
        self.remove_castore_roots(removed.iter())?;
        Ok(removed)
    }
}
