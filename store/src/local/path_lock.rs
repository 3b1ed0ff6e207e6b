//! Per-path locks in Nix's convention: an exclusive `flock` on `<real store path>.lock`, beside
//! the path in the store directory. Nix's `PathLocks` uses the same files, so a casnix process
//! and a Nix process adding the same path wait for each other.
//!
//! The release protocol is Nix's too: the holder unlinks the file and then writes one byte into
//! it, so a waiter that wakes up on an unlinked file sees a non-empty file and retries with a
//! fresh one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::error::StoreError;

/// An exclusive lock on one path, released (and its lock file removed) on drop.
#[derive(Debug)]
pub struct PathLock {
    file: File,
    lock_path: PathBuf,
}

impl PathLock {
    /// Waits for the exclusive lock on `real_path` (the file `real_path.lock`).
    pub fn acquire(real_path: &Path) -> Result<Self, StoreError> {
        // A waiting lock never gives `None`; the loop only spells that out without a panic.
        loop {
            if let Some(lock) = Self::lock(real_path, true)? {
                return Ok(lock);
            }
        }
    }

    /// Takes the lock on `real_path` if no one holds it; `None` if someone does.
    pub fn try_acquire(real_path: &Path) -> Result<Option<Self>, StoreError> {
        Self::lock(real_path, false)
    }

    fn lock(real_path: &Path, wait: bool) -> Result<Option<Self>, StoreError> {
        let mut lock_path = real_path.as_os_str().to_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        loop {
            let file = crate::flock::open_lock_file(&lock_path)
                .map_err(StoreError::io("opening lock file", &lock_path))?;
            let op = if wait { FlockOperation::LockExclusive } else { FlockOperation::NonBlockingLockExclusive };
            if !crate::flock::lock(&file, op).map_err(StoreError::io("locking", &lock_path))? {
                return Ok(None);
            }
            let meta = file.metadata().map_err(StoreError::io("checking lock file", &lock_path))?;
            if meta.len() == 0 {
                return Ok(Some(Self { file, lock_path }));
            }
            // The previous holder deleted this file after we opened it: take a fresh one.
        }
    }

    /// Locks several paths, in sorted order (so two processes never wait for each other).
    pub fn acquire_all<'a>(real_paths: impl IntoIterator<Item = &'a Path>) -> Result<Vec<Self>, StoreError> {
        let mut sorted: Vec<&Path> = real_paths.into_iter().collect();
        sorted.sort();
        sorted.dedup();
        sorted.into_iter().map(Self::acquire).collect()
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Removing the file is an optimisation; the token tells waiters this file is stale.
        let _ = std::fs::remove_file(&self.lock_path);
        let _ = self.file.write_all(b"d");
    }
}

/// A `flock` on the blob pool's lock file (`<state_dir>/casnix/pool.lock`): every add holds it
/// shared from ingest until its paths are materialised, deletions of pool files hold it
/// exclusively, so a blob is never deleted between being ingested and being linked.
#[derive(Debug)]
pub struct PoolLock {
    _file: File,
}

impl PoolLock {
    /// Waits for the lock on `path`, exclusive or shared.
    pub fn acquire(path: &Path, exclusive: bool) -> Result<Self, StoreError> {
        let file = crate::flock::open_lock_file(path)
            .map_err(StoreError::io("opening lock file", path))?;
        let op = if exclusive { FlockOperation::LockExclusive } else { FlockOperation::LockShared };
        crate::flock::lock(&file, op).map_err(StoreError::io("locking", path))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::flock;

    #[test]
    fn lock_excludes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("abc-x");
        let lock = PathLock::acquire(&target).unwrap();
        let other = File::open(dir.path().join("abc-x.lock")).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(lock);
        assert!(!dir.path().join("abc-x.lock").exists());
        // A waiter holding the old (deleted) file sees it is stale.
        assert_eq!(other.metadata().unwrap().len(), 1);
        let again = PathLock::acquire(&target).unwrap();
        drop(again);
    }

    #[test]
    fn threads_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p");
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let counter = counter.clone();
                let target = target.clone();
                s.spawn(move || {
                    for _ in 0..20 {
                        let _lock = PathLock::acquire(&target).unwrap();
                        let before = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(before % 2, 0, "two holders at once");
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 160);
    }
}
