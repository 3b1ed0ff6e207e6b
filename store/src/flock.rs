//! The one place that opens lock files and takes `flock` locks, as Nix does for `big-lock`,
//! `gc.lock`, `<path>.lock` and `temproots/<pid>`.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// Opens `path` for reading and writing, creating it with mode 0600 (Nix's mode for lock files)
/// and never truncating it.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

/// Applies `op` to `file`, retrying when a signal interrupts the wait. Returns `false` when a
/// non-blocking operation would have had to wait, `true` once the lock is held (or released).
pub(crate) fn lock(file: &File, op: FlockOperation) -> io::Result<bool> {
    loop {
        match flock(file, op) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}
