//! Verification (contents against the recorded NAR hash, database against disk), repair, and
//! deletion of paths.

use std::collections::BTreeSet;

use castore::{DirectoryService, Node};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::StorePath;

use super::error::StoreError;
use super::path_lock::PathLock;
use super::Store;

/// What is wrong with one valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is valid but nothing is at its place in the store directory.
    Missing,
    /// The contents hash to something else than the database records.
    HashMismatch {
        /// The recorded NAR hash.
        expected: Hash,
        /// The NAR hash of what is on disk.
        got: Hash,
    },
    /// The contents' NAR size differs from the recorded one.
    SizeMismatch {
        /// The recorded size.
        expected: u64,
        /// The size of what is on disk.
        got: u64,
    },
}

/// The outcome of [`Store::verify_store`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Paths checked.
    pub checked: usize,
    /// Paths with problems, and what they were.
    pub problems: Vec<(StorePath, PathProblem)>,
    /// Paths rewritten from the castore (with `repair`).
    pub repaired: BTreeSet<StorePath>,
    /// Missing paths removed from the database (with `repair`, when nothing could restore them
    /// and no valid path refers to them), as Nix does.
    pub invalidated: BTreeSet<StorePath>,
}

impl VerifyReport {
    /// Whether no problem was found (or every one was repaired).
    pub fn is_ok(&self) -> bool {
        self.problems.iter().all(|(p, _)| self.repaired.contains(p) || self.invalidated.contains(p))
    }
}

impl Store {
    /// Checks one valid path: that it exists on disk and, with `check_contents`, that its NAR
    /// hash and size are the recorded ones. `None` means all is well.
    pub fn verify_path(&self, path: &StorePath, check_contents: bool) -> Result<Option<PathProblem>, StoreError> {
        let info = self.db.query_path_info(path)?.ok_or_else(|| StoreError::InvalidPath(self.print(path)))?;
        let real = self.real_path(path);
        if std::fs::symlink_metadata(&real).is_err() {
            return Ok(Some(PathProblem::Missing));
        }
        if !check_contents {
            return Ok(None);
        }
        let (got, size) = nix_formats::nar::hash_path(&real, Algorithm::Sha256)?;
        if got != info.nar_hash {
            return Ok(Some(PathProblem::HashMismatch { expected: info.nar_hash, got }));
        }
        if info.nar_size != 0 && size != info.nar_size {
            return Ok(Some(PathProblem::SizeMismatch { expected: info.nar_size, got: size }));
        }
        Ok(None)
    }

    /// Checks every valid path (Nix's `verifyStore`). With `repair`, a damaged or missing path
    /// with a castore root whose contents have the recorded hash is rewritten from the castore,
    /// and a missing path that cannot be restored and has no valid referrers is invalidated.
    pub fn verify_store(&self, check_contents: bool, repair: bool) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for path in self.db.query_all_valid_paths()? {
            report.checked += 1;
            let Some(problem) = self.verify_path(&path, check_contents)? else {
                continue;
            };
            if repair {
                if self.repair_from_castore(&path)? {
                    report.repaired.insert(path.clone());
                } else if problem == PathProblem::Missing && self.db.query_referrers(&path)?.iter().all(|r| *r == path) {
                    self.db.invalidate_paths([&path])?;
                    report.invalidated.insert(path.clone());
                }
            }
            report.problems.push((path, problem));
        }
        Ok(report)
    }

    /// Rewrites a valid path from its castore root if it has one whose NAR hash is the recorded
    /// one; returns whether it did.
    pub fn repair_from_castore(&self, path: &StorePath) -> Result<bool, StoreError> {
        let _pool = self.pool_lock(false)?;
        let Some(root) = self.castore_root(path)? else {
            return Ok(false);
        };
        let Some(info) = self.db.query_path_info(path)? else {
            return Ok(false);
        };
        match self.castore.nar_hash(&root) {
            Ok((hash, _)) if hash == info.nar_hash => {}
            _ => return Ok(false),
        }
        let _lock = PathLock::acquire(&self.real_path(path))?;
        self.install(path, &root)?;
        Ok(true)
    }

    /// Deletes valid paths (Nix's `deleteStorePath` for each, under the same rule): refused with
    /// a database error if a valid path outside `paths` refers to one of them. The paths are
    /// invalidated first, then their trees removed, then pool files no longer used are deleted.
    /// Returns the paths deleted.
    pub fn delete_paths<'a>(&self, paths: impl IntoIterator<Item = &'a StorePath>) -> Result<BTreeSet<StorePath>, StoreError> {
        let (removed, blobs) = self.delete_paths_keeping_blobs(paths)?;
        self.remove_blobs_if_unused(blobs)?;
        Ok(removed)
    }

    /// [`Store::delete_paths`] without freeing the pool files: returns the paths removed and
    /// the blobs they used, for [`Store::remove_blobs_if_unused`] later. The collector frees
    /// them only after releasing its claim on the paths: an add holds the pool lock (shared)
    /// while it makes its path a temporary root, which waits while the path is claimed.
    pub(crate) fn delete_paths_keeping_blobs<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<(BTreeSet<StorePath>, BTreeSet<castore::B3Digest>), StoreError> {
        let paths: BTreeSet<StorePath> = paths.into_iter().cloned().collect();
        let mut blobs = BTreeSet::new();
        for path in &paths {
            if let Some(root) = self.castore_root(path)? {
                self.collect_blobs(&root, &mut blobs)?;
            }
        }
        let real_paths: Vec<_> = paths.iter().map(|p| self.real_path(p)).collect();
        let _locks = PathLock::acquire_all(real_paths.iter().map(|p| p.as_path()))?;
        let removed = self.db.invalidate_paths(paths.iter())?;
        for path in &removed {
            let real = self.real_path(path);
            castore::remove_tree(&real).map_err(StoreError::io("deleting", &real))?;
        }
        Ok((removed, blobs))
    }

    /// Deletes those of `blobs` that no tree uses any more, with the pool lock held exclusively
    /// (path locks must not be held: adds take them after the pool lock).
    pub(crate) fn remove_blobs_if_unused(&self, blobs: BTreeSet<castore::B3Digest>) -> Result<(), StoreError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let _pool = self.pool_lock(true)?;
        for digest in blobs {
            self.castore.blobs().remove_if_unused(&digest)?;
        }
        Ok(())
    }

    /// The file blobs of the tree `root`.
    fn collect_blobs(&self, root: &Node, out: &mut BTreeSet<castore::B3Digest>) -> Result<(), StoreError> {
        match root {
            Node::File { digest, .. } => {
                out.insert(*digest);
            }
            Node::Symlink { .. } => {}
            Node::Directory { digest, size } => {
                let closure = self.castore.directories().closure(digest, *size)?;
                for (_, dir) in closure.iter() {
                    for (_, node) in dir.entries() {
                        if let Node::File { digest, .. } = node {
                            out.insert(*digest);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
