//! Making files and directory entries durable, in batches.
//!
//! One `fsync` per file is slow when done one after another (a journal commit each), so a batch
//! of files is synced by many threads at once, which the file system groups into few commits.
//! Past [`SYNCFS_THRESHOLD`] paths a single `syncfs` of the file system is cheaper; it also
//! writes out other processes' dirty data on that file system, which is why smaller batches use
//! it only when the system has little unwritten data ([`prefer_syncfs`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Whether writes are made durable before they count as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Blobs are on stable storage before they get their names, materialised trees before they
    /// are renamed into place, and database commits are synced: after a crash, every name holds
    /// complete, correct bytes. The default.
    #[default]
    Synced,
    /// Nothing is synced (as Nix does unless told otherwise): faster, but after a power loss
    /// pool files and materialised trees may hold truncated bytes under their names. For scratch
    /// stores and tests.
    Unsynced,
}

/// Batches of more paths than this are synced with one `syncfs`.
pub const SYNCFS_THRESHOLD: usize = 256;

/// Batches of more paths than this are synced with one `syncfs` when little else is waiting to
/// be written (a few hundred directory `fsync`s cost far more than one `syncfs` then).
const SYNCFS_SMALL_THRESHOLD: usize = 8;

/// "Little else waiting": the system's dirty and under-writeback pages together at most this.
const LITTLE_PENDING_BYTES: u64 = 32 << 20;

/// Whether a batch of `count` paths is better made durable by one `syncfs` than by an `fsync`
/// each: always past [`SYNCFS_THRESHOLD`], and past a handful when the system has little
/// unwritten data (`Dirty` and `Writeback` of `/proc/meminfo`), so that the `syncfs` costs
/// about what the batch's own writes cost.
pub fn prefer_syncfs(count: usize) -> bool {
    count > SYNCFS_THRESHOLD
        || (count > SYNCFS_SMALL_THRESHOLD && pending_writeback_bytes().is_some_and(|b| b <= LITTLE_PENDING_BYTES))
}

/// The system's dirty and under-writeback bytes, from `/proc/meminfo` (`None` if unreadable).
fn pending_writeback_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some(field("Dirty:")? + field("Writeback:")?)
}

/// Most threads that sync one batch.
const SYNC_THREADS: usize = 32;

/// Makes the contents of `paths` (files or directories, all on the file system of `anchor`)
/// durable. Returns the first failure with its path.
pub fn sync_all(paths: &[PathBuf], anchor: &Path) -> Result<(), (PathBuf, io::Error)> {
    if paths.is_empty() {
        return Ok(());
    }
    if prefer_syncfs(paths.len()) {
        let handle = File::open(anchor).map_err(|e| (anchor.to_path_buf(), e))?;
        return rustix::fs::syncfs(&handle).map_err(|e| (anchor.to_path_buf(), e.into()));
    }
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<(PathBuf, io::Error)>> = Mutex::new(None);
    let threads = paths.len().min(SYNC_THREADS);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { return };
                if let Err(e) = File::open(path).and_then(|f| f.sync_all()) {
                    let mut failure = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    failure.get_or_insert((path.clone(), e));
                    return;
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    #[test]
    fn syncs_small_and_large_batches_and_reports_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..SYNCFS_THRESHOLD + 1)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, b"x").unwrap();
                p
            })
            .collect();
        sync_all(&paths[..3], dir.path()).unwrap();
        sync_all(&paths, dir.path()).unwrap();
        sync_all(&[], dir.path()).unwrap();
        let missing = dir.path().join("missing");
        let (path, _) = sync_all(&[paths[0].clone(), missing.clone()], dir.path()).unwrap_err();
        assert_eq!(path, missing);
    }

    #[test]
    fn reads_the_pending_writeback() {
        // Every Linux kernel casnix supports has both fields.
        assert!(pending_writeback_bytes().is_some());
        assert!(prefer_syncfs(SYNCFS_THRESHOLD + 1));
        assert!(!prefer_syncfs(SYNCFS_SMALL_THRESHOLD));
    }
}
