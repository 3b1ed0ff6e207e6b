//! The NAR of a tree with some entries left out (`builtins.path`'s and `filterSource`'s filter),
//! in two steps: [`select`] asks the filter (on the evaluator's thread), [`dump`] streams the
//! NAR of what was kept (on any thread), so a large tree never has to be held in memory.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use eval::io::{FileKind, IoError};
use nix_formats::hash::{Algorithm, Hash, Hasher};

/// The entries below a root that the filter kept.
pub struct Selection {
    kept: HashSet<PathBuf>,
    digest: Hash,
}

impl Selection {
    /// A digest of the kept entries' paths (to recognise the same addition again).
    pub fn digest(&self) -> &Hash {
        &self.digest
    }
}

fn sorted_children(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Walks `root`, asking `filter` about every entry below it (not about directories it
/// rejected the parent of).
pub fn select(root: &Path, filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>) -> Result<Selection, IoError> {
    let mut kept = HashSet::new();
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if !std::fs::symlink_metadata(&dir)?.is_dir() {
            continue;
        }
        for name in sorted_children(&dir)? {
            let child = dir.join(&name);
            let kind = FileKind::of(std::fs::symlink_metadata(&child)?.file_type());
            if filter(&child.to_string_lossy(), kind)? {
                hasher.update(child.as_os_str().as_bytes());
                hasher.update(b"\0");
                if kind == FileKind::Directory {
                    todo.push(child.clone());
                }
                kept.insert(child);
            }
        }
    }
    Ok(Selection { kept, digest: hasher.finish() })
}

fn put(out: &mut dyn Write, s: &[u8]) -> io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s)?;
    out.write_all(&[0u8; 8][..(8 - s.len() % 8) % 8])
}

/// Writes the NAR of `root` with only the selected entries.
pub fn dump(root: &Path, selection: &Selection, out: &mut dyn Write) -> io::Result<()> {
    put(out, b"nix-archive-1")?;
    node(root, selection, out)
}

fn node(path: &Path, selection: &Selection, out: &mut dyn Write) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    put(out, b"(")?;
    put(out, b"type")?;
    if meta.file_type().is_symlink() {
        put(out, b"symlink")?;
        put(out, b"target")?;
        put(out, std::fs::read_link(path)?.as_os_str().as_bytes())?;
    } else if meta.is_dir() {
        put(out, b"directory")?;
        for name in sorted_children(path)? {
            let child = path.join(&name);
            if !selection.kept.contains(&child) {
                continue;
            }
            put(out, b"entry")?;
            put(out, b"(")?;
            put(out, b"name")?;
            put(out, name.as_bytes())?;
            put(out, b"node")?;
            node(&child, selection, out)?;
            put(out, b")")?;
        }
    } else if meta.is_file() {
        put(out, b"regular")?;
        if meta.permissions().mode() & 0o100 != 0 {
            put(out, b"executable")?;
            put(out, b"")?;
        }
        put(out, b"contents")?;
        let mut file = std::fs::File::open(path)?;
        out.write_all(&meta.len().to_le_bytes())?;
        let copied = io::copy(&mut (&mut file).take(meta.len()), out)?;
        if copied != meta.len() {
            return Err(io::Error::other(format!("'{}' changed while it was read", path.display())));
        }
        out.write_all(&[0u8; 8][..((8 - meta.len() % 8) % 8) as usize])?;
    } else {
        return Err(io::Error::other(format!("file '{}' has an unsupported type", path.display())));
    }
    put(out, b")")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Everything kept: the same bytes as nix-formats' NAR writer.
    #[test]
    fn unfiltered_dump_is_the_nar() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir_all(root.join("sub/empty")).unwrap();
        std::fs::write(root.join("a"), "hello").unwrap();
        std::fs::set_permissions(root.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(root.join("sub/b"), vec![7u8; 100_003]).unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
        let sel = select(&root, &mut |_, _| Ok(true)).unwrap();
        let mut ours = Vec::new();
        dump(&root, &sel, &mut ours).unwrap();
        let mut theirs = Vec::new();
        nix_formats::nar::dump_path(&root, &mut theirs).unwrap();
        assert_eq!(ours, theirs);
        // Leaving `sub` out is the NAR of a copy without it.
        let sel = select(&root, &mut |p, _| Ok(!p.ends_with("/sub"))).unwrap();
        let mut filtered = Vec::new();
        dump(&root, &sel, &mut filtered).unwrap();
        std::fs::remove_dir_all(root.join("sub")).unwrap();
        let mut copy = Vec::new();
        nix_formats::nar::dump_path(&root, &mut copy).unwrap();
        assert_eq!(filtered, copy);
    }
}
