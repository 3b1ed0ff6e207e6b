//! Private copies for files a path shares with other store paths, for when
//! `auto-optimise-store` is off: Nix then keeps identical files of different paths apart (only
//! `nix-store --optimise` links them), and casnix does the same for build outputs.

use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix_formats::store_path::StorePath;

use super::error::StoreError;
use super::Store;

/// Store files' modification time (1 second after the epoch).
fn canonical_mtime() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1)
}

/// Replaces `file` (mode `mode`) by a copy of itself with the same canonical metadata.
fn copy_in_place(file: &Path, mode: u32) -> io::Result<()> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = file.with_file_name(format!(".unshare-{}-{name}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut source = File::open(file)?;
        let mut copy = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        io::copy(&mut source, &mut copy)?;
        copy.sync_all()?;
        copy.set_permissions(Permissions::from_mode(mode))?;
        copy.set_times(FileTimes::new().set_modified(canonical_mtime()))?;
        fs::rename(&temp, file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

impl Store {
    /// The entry of Nix's `.links` for `file` (named by the SHA-256 of its NAR, as Nix names
    /// them), if the file's NAR can be hashed.
    fn links_entry(&self, file: &Path) -> Option<PathBuf> {
        let (hash, _) = nix_formats::nar::hash_path(file, nix_formats::hash::Algorithm::Sha256).ok()?;
        Some(self.real_store_dir.join(".links").join(hash.to_nix32()))
    }

    /// Gives each regular file of `path` that another store path shares (more than two links:
    /// the castore pool's and this path's, not counting one from Nix's `.links`) a private copy, as Nix keeps identical files apart
    /// without `auto-optimise-store`; the shared inode is recorded in `.links` as Nix's
    /// optimiser would have recorded it. A path that gets any copy keeps no castore root (its
    /// NAR is then read from the store directory, as for paths Nix added): the pool file
    /// may go once the other paths do. Returns how many files were copied.
    pub fn unshare_files(&self, path: &StorePath) -> Result<u64, StoreError> {
        let real = self.real_path(path);
        let mut shared: Vec<(PathBuf, u32, Option<PathBuf>)> = Vec::new();
        let mut stack = vec![real.clone()];
        while let Some(next) = stack.pop() {
            let meta = fs::symlink_metadata(&next).map_err(StoreError::io("reading", &next))?;
            if meta.is_dir() {
                for entry in fs::read_dir(&next).map_err(StoreError::io("reading", &next))? {
                    stack.push(entry.map_err(StoreError::io("reading", &next))?.path());
                }
            } else if meta.is_file() && meta.nlink() > 2 {
                // A link from Nix's `.links` is not another path's.
                let entry = self.links_entry(&next);
                let in_links = entry
                    .as_ref()
                    .and_then(|e| fs::symlink_metadata(e).ok())
                    .is_some_and(|l| (l.dev(), l.ino()) == (meta.dev(), meta.ino()));
                if meta.nlink() - u64::from(in_links) > 2 {
                    shared.push((next, meta.mode() & 0o555, entry));
                }
            }
        }
        if shared.is_empty() {
            return Ok(0);
        }
        // First the root goes, so that at any instant the path is read correctly.
        self.db.remove_castore_roots([path])?;
        // The shared inode is recorded in `.links` (unless an entry is there), so that Nix's
        // `nix-store --optimise` links the copy back to the inode the other paths share, as
        // Nix's optimiser would have recorded it when they were optimised. Best effort.
        for (file, _, entry) in &shared {
            if let Some(entry) = entry.as_ref().filter(|e| fs::symlink_metadata(e).is_err()) {
                if let Err(e) = fs::hard_link(file, entry) {
                    tracing::debug!("linking '{}' into .links: {e}", file.display());
                }
            }
        }
        // The store directory itself (the parent of a single-file path) is writable already.
        let mut parents: Vec<PathBuf> = shared
            .iter()
            .filter_map(|(f, _, _)| f.parent().map(Path::to_path_buf))
            .filter(|dir| *dir != self.real_store_dir)
            .collect();
        parents.sort();
        parents.dedup();
        for dir in &parents {
            fs::set_permissions(dir, Permissions::from_mode(0o755)).map_err(StoreError::io("making writable", dir))?;
        }
        let copied = shared.iter().try_for_each(|(file, mode, _)| copy_in_place(file, *mode).map_err(StoreError::io("copying", file)));
        for dir in &parents {
            let restored = fs::set_permissions(dir, Permissions::from_mode(0o555))
                .and_then(|()| File::open(dir))
                .and_then(|handle| handle.set_times(FileTimes::new().set_modified(canonical_mtime())));
            restored.map_err(StoreError::io("restoring", dir))?;
        }
        copied?;
        Ok(shared.len() as u64)
    }
}
