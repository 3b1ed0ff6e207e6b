//! Hashing the NAR of a tree with a filter (for `builtins.path`/`filterSource`), without
//! materialising it.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix_formats::hash::{Algorithm, Hash, Hasher};

use crate::io::{FileKind, IoError};

fn put(h: &mut Hasher, s: &[u8]) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s);
    let pad = (8 - s.len() % 8) % 8;
    h.update(&[0u8; 8][..pad]);
}

/// The hash of the NAR of `root`, leaving out entries below it that `filter` rejects.
pub fn hash_filtered(
    root: &Path,
    algo: Algorithm,
    filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
) -> Result<Hash, IoError> {
    let mut h = Hasher::new(algo);
    put(&mut h, b"nix-archive-1");
    node(&mut h, root, filter)?;
    Ok(h.finish())
}

fn node(h: &mut Hasher, path: &Path, filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>) -> Result<(), IoError> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    put(h, b"(");
    put(h, b"type");
    if ft.is_symlink() {
        put(h, b"symlink");
        put(h, b"target");
        put(h, std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if ft.is_dir() {
        put(h, b"directory");
        let mut names: Vec<_> = std::fs::read_dir(path)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = path.join(&name);
            let kind = match std::fs::symlink_metadata(&child) {
                Ok(m) if m.file_type().is_symlink() => FileKind::Symlink,
                Ok(m) if m.is_dir() => FileKind::Directory,
                Ok(m) if m.is_file() => FileKind::Regular,
                _ => FileKind::Unknown,
            };
            if !filter(&child.to_string_lossy(), kind)? {
                continue;
            }
            put(h, b"entry");
            put(h, b"(");
            put(h, b"name");
            put(h, name.as_bytes());
            put(h, b"node");
            node(h, &child, filter)?;
            put(h, b")");
        }
    } else if ft.is_file() {
        put(h, b"regular");
        if meta.permissions().mode() & 0o100 != 0 {
            put(h, b"executable");
            put(h, b"");
        }
        put(h, b"contents");
        let data = std::fs::read(path)?;
        put(h, &data);
    } else {
        return Err(IoError::Store(format!("file '{}' has an unsupported type", path.display())));
    }
    put(h, b")");
    Ok(())
}
