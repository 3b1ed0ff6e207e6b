//! Reading the store: path info and graph queries (delegated to the database) and NARs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use castore::Node;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use super::error::StoreError;
use super::root_encoding::decode_root;
use super::Store;
use crate::db::ClosureOptions;

impl Store {
    /// The info of `path`, if it is valid.
    pub fn query_path_info(&self, path: &StorePath) -> Result<Option<ValidPathInfo>, StoreError> {
        Ok(self.db.query_path_info(path)?)
    }

    /// Whether `path` is valid.
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        Ok(self.db.is_valid(path)?)
    }

    /// The references of a valid path.
    pub fn query_references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.db.query_references(path)?)
    }

    /// The valid paths that refer to `path`.
    pub fn query_referrers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.db.query_referrers(path)?)
    }

    /// The valid derivations that have `path` among their outputs.
    pub fn query_valid_derivers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.db.query_valid_derivers(path)?)
    }

    /// The output map (name → path) of a valid derivation.
    pub fn query_derivation_outputs(&self, drv: &StorePath) -> Result<BTreeMap<String, StorePath>, StoreError> {
        Ok(self.db.query_derivation_outputs(drv)?)
    }

    /// The valid path whose hash part is `hash_part`.
    pub fn query_path_from_hash_part(&self, hash_part: &str) -> Result<Option<StorePath>, StoreError> {
        Ok(self.db.query_path_from_hash_part(hash_part)?)
    }

    /// Every valid path.
    pub fn query_all_valid_paths(&self) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.db.query_all_valid_paths()?)
    }

    /// The closure of `paths` (see [`crate::db::Db::closure`]).
    pub fn closure<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
        options: ClosureOptions,
    ) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.db.closure(paths, options)?)
    }

    /// The castore root of a valid path, if casnix recorded one that Nix's database backs.
    pub fn castore_root(&self, path: &StorePath) -> Result<Option<Node>, StoreError> {
        match self.db.castore_root(path)? {
            None => Ok(None),
            Some(bytes) => decode_root(&bytes).map(Some).ok_or_else(|| StoreError::CorruptCastoreRoot(self.print(path))),
        }
    }

    /// Writes the NAR of a valid path to `out`: rendered from the castore when the path has a
    /// trusted root, otherwise dumped from the store directory (paths that Nix added).
    pub fn nar_from_path<W: Write>(&self, path: &StorePath, mut out: W) -> Result<W, StoreError> {
        if !self.db.is_valid(path)? {
            return Err(StoreError::InvalidPath(self.print(path)));
        }
        match self.castore_root(path)? {
            Some(root) => Ok(self.castore.render_nar(&root, out)?),
            None => {
                nix_formats::nar::dump_path(&self.real_path(path), &mut out)?;
                Ok(out)
            }
        }
    }
}
