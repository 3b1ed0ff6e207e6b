//! A read-only store made writable for the daemon, as Nix does (2.26 `main.cc`, `LocalStore::
//! makeStoreWritable`): NixOS mounts `/nix/store` read-only (a bind mount) to keep everything
//! but the daemon from changing it. Running as root on such a mount, the daemon moves into a
//! private mount namespace and remounts the store read-write there; the rest of the machine
//! still sees it read-only. Must run while the process has one thread (a mount namespace is
//! unshared per thread).

use std::path::Path;

/// An error making the store writable.
#[derive(Debug, thiserror::Error)]
pub enum StoreMountError {
    /// `statvfs` of the store directory failed.
    #[error("getting info about the store mount point '{path}': {source}")]
    Stat {
        /// The store directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The private mount namespace could not be made.
    #[error("setting up a private mount namespace: {0}")]
    Unshare(std::io::Error),
    /// The remount failed.
    #[error("remounting '{path}' writable: {source}")]
    Remount {
        /// The store directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// What [`make_store_writable`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMount {
    /// Not root: nothing to do (nor could it be done).
    NotRoot,
    /// The store is writable already.
    Writable,
    /// The store was on a read-only mount; it is writable in the daemon's own mount namespace.
    Remounted,
}

/// Makes the store directory `real_store_dir` writable for this process if it is on a
/// read-only mount and the process runs as root (see the module's documentation).
pub fn make_store_writable(real_store_dir: &Path) -> Result<StoreMount, StoreMountError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(StoreMount::NotRoot);
    }
    let path = || real_store_dir.display().to_string();
    let stat = match rustix::fs::statvfs(real_store_dir) {
        Ok(stat) => stat,
        // A store not made yet is created writable by the store itself.
        Err(rustix::io::Errno::NOENT) => return Ok(StoreMount::Writable),
        Err(e) => return Err(StoreMountError::Stat { path: path(), source: e.into() }),
    };
    if !stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Ok(StoreMount::Writable);
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| StoreMountError::Unshare(std::io::Error::from(e)))?;
    rustix::mount::mount_remount(real_store_dir, rustix::mount::MountFlags::BIND, "")
        .map_err(|e| StoreMountError::Remount { path: path(), source: e.into() })?;
    Ok(StoreMount::Remounted)
}
