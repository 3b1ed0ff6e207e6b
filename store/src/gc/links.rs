//! Nix's `.links` directory in the store directory, which `nix-store --optimise` (Nix's, run on
//! a casnix store) fills with one hard link per distinct file. As Nix's collector does, entries
//! no store file uses any more are deleted; an entry whose only other link is a castore pool
//! file is unused too, and goes with that pool file.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Deletes the entries of `links` (a `.links` directory) that have no other link; returns the
/// `(device, inode)` of the regular files with exactly one other link (maybe a pool file's), and
/// how many entries were deleted. A missing directory has no entries.
pub(super) fn sweep(links: &Path) -> (HashSet<(u64, u64)>, u64) {
    let mut paired = HashSet::new();
    let mut deleted = 0;
    let Ok(entries) = std::fs::read_dir(links) else { return (paired, 0) };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        match meta.nlink() {
            1 => match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) => tracing::warn!("deleting unused link '{}': {e}", path.display()),
            },
            2 if meta.is_file() => {
                paired.insert((meta.dev(), meta.ino()));
            }
            _ => {}
        }
    }
    (paired, deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_entries_go_and_pairs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let links = dir.path().join(".links");
        std::fs::create_dir(&links).unwrap();
        std::fs::write(links.join("alone"), "a").unwrap();
        std::fs::write(links.join("paired"), "b").unwrap();
        std::fs::hard_link(links.join("paired"), dir.path().join("elsewhere")).unwrap();
        std::fs::write(links.join("triple"), "c").unwrap();
        std::fs::hard_link(links.join("triple"), dir.path().join("t1")).unwrap();
        std::fs::hard_link(links.join("triple"), dir.path().join("t2")).unwrap();
        let (paired, deleted) = sweep(&links);
        assert_eq!(deleted, 1);
        assert!(!links.join("alone").exists());
        let meta = std::fs::metadata(links.join("paired")).unwrap();
        assert_eq!(paired, HashSet::from([(meta.dev(), meta.ino())]));
        assert!(links.join("triple").exists());
        assert_eq!(sweep(&dir.path().join("missing")).1, 0);
    }
}
