//! Creating roots: indirect roots (`gcroots/auto`) and permanent roots (a symlink to a store
//! path, registered as an indirect root), as Nix 2.26's `addIndirectRoot` and `addPermRoot` do.

use std::path::{Path, PathBuf};

use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::StorePath;

use crate::local::{Store, StoreError};

/// Creates (or replaces) the symlink `link` → `target` atomically: a temporary link beside it
/// is renamed over it (Nix's `replaceSymlink`).
pub fn replace_symlink(target: &Path, link: &Path) -> Result<(), StoreError> {
    let parent = link.parent().unwrap_or(Path::new("/"));
    for attempt in 0u32.. {
        let name = link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = parent.join(format!(".{name}.tmp-{}-{attempt}", std::process::id()));
        match std::os::unix::fs::symlink(target, &temp) {
            Ok(()) => {
                return std::fs::rename(&temp, link).map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    StoreError::io("creating symlink", link)(e)
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => continue,
            Err(e) => return Err(StoreError::io("creating symlink", &temp)(e)),
        }
    }
    Ok(())
}

impl Store {
    /// Makes `link` (an absolute path outside the store, normally a symlink into it) an
    /// indirect root: `gcroots/auto/<nix32 sha1 of link>` → `link`.
    pub fn add_indirect_root(&self, link: &Path) -> Result<(), StoreError> {
        let hash = Hash::of(Algorithm::Sha1, link.as_os_str().as_encoded_bytes()).to_nix32();
        let auto = self.state_dir().join("gcroots").join("auto");
        std::fs::create_dir_all(&auto).map_err(StoreError::io("creating directory", &auto))?;
        replace_symlink(link, &auto.join(hash))
    }

    /// Creates the permanent root `gc_root` → `path` and registers it as an indirect root;
    /// returns the root's path. Refused inside the store, and over anything at `gc_root` but a
    /// symlink into the store (Nix's messages).
    pub fn add_perm_root(&self, path: &StorePath, gc_root: &Path) -> Result<PathBuf, StoreError> {
        let store_dir = Path::new(self.store_dir().as_str());
        let in_store = |p: &Path| p.starts_with(store_dir) || p.starts_with(self.real_store_dir());
        if in_store(gc_root) {
            return Err(StoreError::Refused(format!(
                "creating a garbage collector root ({}) in the Nix store is forbidden (are you running nix-build inside the store?)",
                gc_root.display()
            )));
        }
        self.add_temp_root(path)?;
        if let Ok(meta) = std::fs::symlink_metadata(gc_root) {
            let points_into_store =
                meta.file_type().is_symlink() && std::fs::read_link(gc_root).is_ok_and(|t| in_store(&t));
            if !points_into_store {
                return Err(StoreError::Refused(format!("cannot create symlink '{}'; already exists", gc_root.display())));
            }
        }
        replace_symlink(Path::new(&self.print(path)), gc_root)?;
        self.add_indirect_root(gc_root)?;
        Ok(gc_root.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::StoreConfig;

    #[test]
    fn indirect_and_perm_roots_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path().join("store").to_str().unwrap(), dir.path().join("state"));
        config.durability = castore::Durability::Unsynced;
        let store = Store::open(&config).unwrap();
        let info = store.add_text("hello", b"hi", &Default::default()).unwrap();
        let root = dir.path().join("result");
        assert_eq!(store.add_perm_root(&info.path, &root).unwrap(), root);
        assert_eq!(std::fs::read_link(&root).unwrap(), Path::new(&store.print(&info.path)));
        let roots = store.find_roots_no_temp(false).unwrap();
        assert!(roots.get(&info.path).is_some_and(|links| links.contains(root.to_str().unwrap())));
        // Again over the old link is fine; over a regular file is not.
        store.add_perm_root(&info.path, &root).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(store.add_perm_root(&info.path, &file), Err(StoreError::Refused(_))));
        let inside = Path::new(&store.print(&info.path)).join("x");
        assert!(matches!(store.add_perm_root(&info.path, &inside), Err(StoreError::Refused(_))));
    }
}
