//! Adopting paths that Nix added (or that have no trusted castore root): their contents are
//! ingested into the castore, checked against the recorded NAR hash, and the tree on disk is
//! swapped (atomically, see `Store::install`) for a materialised one whose files are hardlinks
//! into the pool (deduplicated).

use nix_formats::store_path::StorePath;

use super::error::{Mismatch, StoreError};
use super::path_lock::PathLock;
use super::root_encoding::encode_root;
use super::Store;

impl Store {
    /// Gives the valid path `path` a castore root, if it has none: ingests it from disk, checks
    /// its NAR hash against the database ([`StoreError::ContentsChanged`] otherwise, leaving the
    /// path as it was), replaces the tree by its materialised twin in one atomic exchange, and
    /// records the root. Returns whether anything was done.
    pub fn adopt_path(&self, path: &StorePath) -> Result<bool, StoreError> {
        if self.castore_root(path)?.is_some() {
            return Ok(false);
        }
        let _pool = self.pool_lock(false)?;
        let real = self.real_path(path);
        let _lock = PathLock::acquire(&real)?;
        let info = self.db.query_path_info(path)?.ok_or_else(|| StoreError::InvalidPath(self.print(path)))?;
        if self.castore_root(path)?.is_some() {
            return Ok(false);
        }
        let ingested = self.castore.ingest_path(&real)?;
        if ingested.nar_hash != info.nar_hash {
            return Err(StoreError::ContentsChanged(Box::new(Mismatch {
                path: self.print(path),
                expected: info.nar_hash,
                got: ingested.nar_hash,
            })));
        }
        self.install(path, &ingested.root)?;
        self.db.set_castore_root(path, &info.nar_hash, &encode_root(&ingested.root))?;
        Ok(true)
    }
}
