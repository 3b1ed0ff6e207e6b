//! Entries of the store directory that are not valid paths: Nix's collector reads the store
//! directory and deletes every such entry but `.links` (leftovers of interrupted adds and
//! builds: `<path>.lock`, `<path>.tmp-…`, `<path>.chroot`, unregistered trees, stray files).
//!
//! An entry named like a store path is kept while its hash part is a temporary root (as Nix
//! keeps it); casnix also keeps entries whose path's lock (`<path>.lock`) is held by anyone, and
//! Nix's `tmp-…` directories while they are locked (as Nix does).

use std::collections::BTreeSet;
use std::path::Path;

use nix_formats::store_path::StorePath;
use rustix::fs::FlockOperation;

use super::collect::{bytes_freed_by, Collection};
use crate::local::leftovers::{locked_directory, owner, sandbox_in_use};
use crate::local::{PathLock, StoreError};

/// Nix's hard-link pool, never touched.
const LINKS: &str = ".links";

impl Collection<'_> {
    /// The names in the store directory that are not valid paths (sorted).
    fn invalid_entries(&self, valid: &BTreeSet<StorePath>) -> Result<Vec<String>, StoreError> {
        let dir = self.store.real_store_dir();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(StoreError::io("reading", dir))? {
            let entry = entry.map_err(StoreError::io("reading", dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!("skipping a store directory entry whose name is not UTF-8");
                continue;
            };
            if name == LINKS || StorePath::from_base_name(&name).is_ok_and(|p| valid.contains(&p)) {
                continue;
            }
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    /// For `ReturnLive`: entries named like store paths whose hash part is a temporary root
    /// (Nix counts them alive).
    pub(super) fn report_live_entries(&mut self, valid: &BTreeSet<StorePath>) -> Result<(), StoreError> {
        for name in self.invalid_entries(valid)? {
            if let Ok(path) = StorePath::from_base_name(&name) {
                if self.server.is_root(path.hash_part()) {
                    self.result.paths.insert(path);
                }
            }
        }
        Ok(())
    }

    /// For `ReturnDead`: the entries a deletion would remove (without removing them).
    pub(super) fn report_dead_entries(&mut self, valid: &BTreeSet<StorePath>) -> Result<(), StoreError> {
        for name in self.invalid_entries(valid)? {
            let in_use = match owner(&name) {
                Some(owner) => {
                    lock_held(&self.store.real_path(&owner))
                        || name.ends_with(".chroot") && sandbox_in_use(&self.store.real_store_dir().join(&name))
                }
                None => name.starts_with("tmp-") && locked_directory(&self.store.real_store_dir().join(&name)),
            };
            if in_use {
                continue;
            }
            match StorePath::from_base_name(&name) {
                Ok(path) if self.server.is_root(path.hash_part()) => {}
                Ok(path) => {
                    self.result.paths.insert(path);
                }
                Err(_) => {
                    self.result.other_entries.insert(name);
                }
            }
        }
        Ok(())
    }

    /// Deletes the entries that are not valid paths, not temporary roots and not locked,
    /// stopping once the byte limit is passed.
    pub(super) fn delete_invalid_entries(&mut self, valid: &BTreeSet<StorePath>) -> Result<(), StoreError> {
        for name in self.invalid_entries(valid)? {
            if self.limit_reached() {
                break;
            }
            self.delete_entry(&name)?;
        }
        Ok(())
    }

    /// `DeleteSpecific` of a path that is not valid: its entry goes unless it is rooted or in
    /// use. As Nix, the path is reported deleted even if there was nothing to delete.
    pub(super) fn delete_invalid_specific(&mut self, path: &StorePath) -> Result<(), StoreError> {
        if !self.delete_entry(&path.to_string())? {
            return Err(StoreError::StillAlive(self.store.print(path)));
        }
        Ok(())
    }

    /// Deletes one entry of the store directory unless it is kept; returns whether it went.
    fn delete_entry(&mut self, name: &str) -> Result<bool, StoreError> {
        let as_path = StorePath::from_base_name(name).ok();
        let key = as_path.as_ref().map_or(name, |p| p.hash_part()).to_owned();
        let claimed = loop {
            match self.server.claim(vec![(key.as_str(), ())]) {
                Ok(claimed) => break !claimed.is_empty(),
                Err(fresh) => self.absorb(fresh)?,
            }
        };
        let deleted = if claimed { self.delete_unless_in_use(name, as_path.as_ref()) } else { Ok(false) };
        self.server.release();
        deleted
    }

    fn delete_unless_in_use(&mut self, name: &str, as_path: Option<&StorePath>) -> Result<bool, StoreError> {
        let real = self.store.real_store_dir().join(name);
        // Held while the entry is removed, so no one starts adding its path meanwhile.
        let _lock = match owner(name) {
            Some(owner) => {
                if self.store.db().is_valid(&owner)? && owner.to_string() == name {
                    return Ok(false);
                }
                match PathLock::try_acquire(&self.store.real_path(&owner))? {
                    Some(lock) => Some(lock),
                    None => {
                        tracing::debug!("skipping '{}': its path is locked", real.display());
                        return Ok(false);
                    }
                }
            }
            None => None,
        };
        // Nix's `tmp-…` directories and a running sandbox's `<drv>.chroot` are locked while used.
        if name.starts_with("tmp-") && locked_directory(&real) || name.ends_with(".chroot") && sandbox_in_use(&real) {
            tracing::debug!("skipping locked tempdir '{}'", real.display());
            return Ok(false);
        }
        (self.progress)(&format!("deleting '{}/{name}'", self.store.store_dir().as_str()));
        let bytes = bytes_freed_by(&real);
        match castore::remove_tree(&real) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("deleting", &real)(e)),
        }
        self.result.bytes_freed = self.result.bytes_freed.saturating_add(bytes);
        match as_path {
            Some(path) => self.result.paths.insert(path.clone()),
            None => self.result.other_entries.insert(name.to_owned()),
        };
        Ok(true)
    }
}

/// Whether someone holds the lock of the path at `real_path` (without creating its lock file).
fn lock_held(real_path: &Path) -> bool {
    let mut lock_path = real_path.as_os_str().to_os_string();
    lock_path.push(".lock");
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&lock_path) else { return false };
    match crate::flock::lock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(true) => {
            let _ = crate::flock::lock(&file, FlockOperation::Unlock);
            false
        }
        _ => true,
    }
}
