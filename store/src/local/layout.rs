//! Creating the store's directories as Nix does (`LocalStore`'s constructor): the store
//! directory (mode 1775, group `nixbld`, when running as root), `gcroots/`, `profiles/` and
//! `temproots/` under the state directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::StoreError;

/// The group Nix gives the store directory when running as root.
const BUILD_GROUP: &str = "nixbld";

/// Creates what is missing of the layout; existing directories are left as they are, except
/// that the store directory's mode is set when running as root.
pub(crate) fn create(real_store_dir: &Path, state_dir: &Path) -> Result<(), StoreError> {
    let gcroots = state_dir.join("gcroots");
    let gcroots_existed = gcroots.is_dir();
    // `.links` is Nix's hard-link pool; casnix never uses it (its pool is the castore), but Nix
    // creates it and tools expect it.
    for dir in [real_store_dir.to_path_buf(), real_store_dir.join(".links"), gcroots.clone(), state_dir.join("profiles"), state_dir.join("temproots")] {
        std::fs::create_dir_all(&dir).map_err(StoreError::io("creating directory", &dir))?;
    }
    // As Nix's `LocalStore` does: profiles are roots, and each user gets a place for theirs.
    if !gcroots_existed {
        let link = gcroots.join("profiles");
        match std::os::unix::fs::symlink(state_dir.join("profiles"), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io("creating symlink", &link)(e)),
        }
    }
    for dir in [state_dir.join("profiles").join("per-user"), gcroots.join("per-user")] {
        std::fs::create_dir_all(&dir).map_err(StoreError::io("creating directory", &dir))?;
        let mode = std::fs::metadata(&dir).map_err(StoreError::io("reading", &dir))?.permissions().mode() & 0o7777;
        if mode != 0o755 {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .map_err(StoreError::io("changing the mode of", &dir))?;
        }
    }
    if rustix::process::geteuid().is_root() {
        if let Some(gid) = group_id(BUILD_GROUP) {
            rustix::fs::chown(real_store_dir, Some(rustix::process::Uid::ROOT), Some(gid))
                .map_err(|e| StoreError::io("changing the owner of", real_store_dir)(e.into()))?;
        }
        std::fs::set_permissions(real_store_dir, std::fs::Permissions::from_mode(0o1775))
            .map_err(StoreError::io("changing the mode of", real_store_dir))?;
    }
    Ok(())
}

/// The id of group `name` in `/etc/group`, if it is there.
fn group_id(name: &str) -> Option<rustix::process::Gid> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    parse_group_id(&text, name).map(rustix::process::Gid::from_raw)
}

fn parse_group_id(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_file_lines() {
        let text = "root:x:0:\nnixbld:x:30000:nixbld1,nixbld2\nbad\n";
        assert_eq!(parse_group_id(text, "nixbld"), Some(30000));
        assert_eq!(parse_group_id(text, "root"), Some(0));
        assert_eq!(parse_group_id(text, "bad"), None);
        assert_eq!(parse_group_id(text, "other"), None);
    }

    #[test]
    fn creates_state_directories() {
        let dir = tempfile::tempdir().unwrap();
        create(&dir.path().join("store"), &dir.path().join("state")).unwrap();
        for sub in ["store", "state/gcroots", "state/profiles", "state/temproots", "state/profiles/per-user", "state/gcroots/per-user"] {
            assert!(dir.path().join(sub).is_dir(), "{sub}");
        }
    }
}
