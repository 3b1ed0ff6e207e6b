//! Nix's "big lock" (`$NIX_STATE_DIR/db/big-lock`): every process that opens the database for
//! writing holds it shared (`flock`), and Nix holds it exclusively while it migrates an old schema.
//! Holding it shared keeps a migration from running under casnix's feet.

use std::fs::File;
use std::path::Path;

use rustix::fs::FlockOperation;

use super::error::DbError;

/// A shared `flock` on the big-lock file, released when dropped (with the file).
#[derive(Debug)]
pub(crate) struct BigLock {
    _file: File,
}

impl BigLock {
    /// Opens (creating, mode 0600, as Nix) `path` and waits for a shared lock on it.
    pub fn shared(path: &Path) -> Result<Self, DbError> {
        let file = crate::flock::open_lock_file(path).map_err(DbError::io("opening lock file", path))?;
        crate::flock::lock(&file, FlockOperation::LockShared).map_err(DbError::io("locking", path))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::flock;

    #[test]
    fn shared_locks_coexist_and_block_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big-lock");
        let a = BigLock::shared(&path).unwrap();
        let b = BigLock::shared(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop((a, b));
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_ok());
    }
}
