//! Removing what interrupted adds leave in the store directory: temporary trees
//! (`<path>.tmp-…`), trees renamed into place but never registered, and stale lock files.

use std::collections::BTreeSet;
use std::path::Path;

use rustix::fs::FlockOperation;

use nix_formats::store_path::StorePath;

use super::error::StoreError;
use super::path_lock::PathLock;
use super::Store;

/// The store path an entry of the store directory belongs to: the entry itself, or the path
/// whose lock file, temporary tree, or build directory (`.chroot`, `.check`, Nix's) it is.
/// `None` for names that are none of these.
pub(crate) fn owner(name: &str) -> Option<StorePath> {
    let base = if let Some(base) = [".lock", ".chroot", ".check"].iter().find_map(|s| name.strip_suffix(s)) {
        base
    } else if let Some(at) = name.find(".tmp-") {
        &name[..at]
    } else {
        name
    };
    StorePath::from_base_name(base).ok()
}

/// Whether `dir` is a directory someone holds a lock on (Nix locks its `tmp-…` directories
/// while it uses them); a directory that cannot be opened counts as locked, as in Nix.
pub(crate) fn locked_directory(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let Ok(fd) = rustix::fs::open(dir, flags, Mode::empty()) else { return true };
    let file = std::fs::File::from(fd);
    !matches!(crate::flock::lock(&file, FlockOperation::NonBlockingLockExclusive), Ok(true))
}

/// Whether `path` is a running sandbox's `<drv>.chroot` directory (its builder holds a lock on
/// it). Anything that cannot be opened as a directory is not one.
pub(crate) fn sandbox_in_use(path: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else { return false };
    let file = std::fs::File::from(fd);
    !matches!(crate::flock::lock(&file, FlockOperation::NonBlockingLockExclusive), Ok(true))
}

impl Store {
    /// Deletes the entries of the store directory that belong to a path that is not valid and
    /// that no one is adding (its lock is free): the remains of interrupted adds, whether by
    /// casnix or Nix. Entries of valid paths, of paths being added, and names that are not store
    /// paths are left alone. Returns the names removed.
    pub fn remove_leftovers(&self) -> Result<BTreeSet<String>, StoreError> {
        let dir = &self.real_store_dir;
        let mut by_owner: std::collections::BTreeMap<StorePath, Vec<String>> = Default::default();
        for entry in std::fs::read_dir(dir).map_err(StoreError::io("reading", dir))? {
            let entry = entry.map_err(StoreError::io("reading", dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // A valid path is never a leftover, whatever its name looks like.
            if let Ok(itself) = StorePath::from_base_name(&name) {
                if self.db.is_valid(&itself)? {
                    continue;
                }
            }
            if let Some(path) = owner(&name) {
                by_owner.entry(path).or_default().push(name);
            }
        }
        let mut removed = BTreeSet::new();
        for (path, names) in by_owner {
            let real = self.real_path(&path);
            let Some(_lock) = PathLock::try_acquire(&real)? else {
                continue;
            };
            let valid = self.db.is_valid(&path)?;
            for name in names {
                if name.ends_with(".lock") {
                    // Removed when `_lock` is released.
                    removed.insert(name);
                    continue;
                }
                if valid && name == path.to_string() {
                    continue;
                }
                let target = dir.join(&name);
                // A sandbox's root while its build runs.
                if name.ends_with(".chroot") && sandbox_in_use(&target) {
                    continue;
                }
                castore::remove_tree(&target).map_err(StoreError::io("removing", &target))?;
                removed.insert(name);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_of_entries() {
        let p = "00bgd045z0d4icpbc2yyz4gx48ak44la-hello";
        assert_eq!(owner(p).unwrap().to_string(), p);
        assert_eq!(owner(&format!("{p}.lock")).unwrap().to_string(), p);
        assert_eq!(owner(&format!("{p}.tmp-12-3")).unwrap().to_string(), p);
        assert_eq!(owner(&format!("{p}.chroot")).unwrap().to_string(), p);
        assert_eq!(owner(&format!("{p}.check")).unwrap().to_string(), p);
        assert_eq!(owner(".links"), None);
        assert_eq!(owner("junk"), None);
    }
}
