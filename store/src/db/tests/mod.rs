//! Unit tests of the database layer on temporary directories.

mod casnix;
mod derivations;
mod invalidate;
mod open;
mod paths;
mod queries;
mod realisations;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};
use tempfile::TempDir;

use super::{Db, OpenMode};

/// The logical store directory the unit tests use (no files are needed in it).
pub(super) fn store_dir() -> StoreDir {
    StoreDir::new("/nix/store")
}

/// A fresh state directory and a read-write database in it.
pub(super) fn fresh() -> (TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = open_rw(dir.path());
    (dir, db)
}

pub(super) fn open_rw(state: &Path) -> Db {
    Db::open(state, store_dir(), OpenMode::ReadWrite).unwrap()
}

/// A store path with a hash part derived from `name`.
pub(super) fn path(name: &str) -> StorePath {
    let digest = nix_formats::hash::compress(Hash::of(Algorithm::Sha256, name.as_bytes()).digest(), 20);
    let mut d = [0u8; 20];
    d.copy_from_slice(&digest);
    StorePath::from_digest(&d, name).unwrap()
}

/// An info for `p` with references `refs`, a NAR hash derived from its name, and a size.
pub(super) fn info(p: &StorePath, refs: &[&StorePath]) -> ValidPathInfo {
    let mut i = ValidPathInfo::new(p.clone(), Hash::of(Algorithm::Sha256, p.to_string().as_bytes()));
    i.references = refs.iter().map(|r| (*r).clone()).collect();
    i.nar_size = 120;
    i.registration_time = 1_700_000_000;
    i
}

pub(super) fn no_drvs() -> BTreeMap<StorePath, nix_formats::derivation::Derivation> {
    BTreeMap::new()
}

pub(super) fn set(paths: &[&StorePath]) -> BTreeSet<StorePath> {
    paths.iter().map(|p| (*p).clone()).collect()
}

/// Reads one SQL value from Nix's database file directly.
pub(super) fn sql_value<T: rusqlite::types::FromSql>(db: &Db, sql: &str) -> T {
    let conn = rusqlite::Connection::open(db.nix_db_path()).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
