//! Git object hashing of a file system object (Nix's `git::dumpHash`, experimental feature
//! `git-hashing`): a regular file or symlink is a blob (`blob <size>\0<contents>`, a symlink's
//! contents being its target); a directory is a tree (`tree <size>\0` then, per entry in Git's
//! order — directories sorted as if their names ended in `/` —, `<mode> <name>\0<raw hash>`,
//! modes `100644`, `100755`, `120000`, `40000`). The object is read from its NAR
//! serialisation, so a tree is hashed in one pass with one entry list per open directory.

use std::io::Read;

use crate::hash::{Algorithm, Hash, Hasher};
use crate::nar::{Event, Limits, ReadError, Reader};

/// Errors from hashing a NAR as a Git object.
#[derive(Debug, thiserror::Error)]
pub enum GitHashError {
    /// The NAR is malformed.
    #[error(transparent)]
    Nar(#[from] ReadError),
    /// The NAR ended without a complete object.
    #[error("the archive holds no complete file system object")]
    Incomplete,
}

/// The hash of a blob with these contents.
pub fn blob_hash(algo: Algorithm, contents: &[u8]) -> Hash {
    let mut h = Hasher::new(algo);
    h.update(format!("blob {}\0", contents.len()).as_bytes());
    h.update(contents);
    h.finish()
}

/// One entry of a tree: its sort key (name, plus `/` for directories), mode and hash.
struct Entry {
    key: Vec<u8>,
    mode: &'static str,
    hash: Hash,
}

/// The hash of a tree with these entries (in any order).
fn tree_hash(algo: Algorithm, mut entries: Vec<Entry>) -> Hash {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let mut body = Vec::new();
    for e in &entries {
        let name = e.key.strip_suffix(b"/").filter(|_| e.mode == "40000").unwrap_or(&e.key);
        body.extend_from_slice(e.mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(e.hash.digest());
    }
    let mut h = Hasher::new(algo);
    h.update(format!("tree {}\0", body.len()).as_bytes());
    h.update(&body);
    h.finish()
}

/// The Git hash (with `algo`, SHA-1 as Git's default) of the file system object serialised
/// in the NAR read from `nar`.
pub fn hash_nar(nar: impl Read, algo: Algorithm) -> Result<Hash, GitHashError> {
    let mut reader = Reader::new(nar, Limits::default());
    // Open directories: their entries so far, and the name of the entry being read.
    let mut stack: Vec<(Vec<Entry>, Vec<u8>)> = Vec::new();
    let mut result = None;
    let mut done = |stack: &mut Vec<(Vec<Entry>, Vec<u8>)>, mode: &'static str, hash: Hash| match stack.last_mut() {
        Some((entries, name)) => {
            let mut key = std::mem::take(name);
            if mode == "40000" {
                key.push(b'/');
            }
            entries.push(Entry { key, mode, hash });
        }
        None => result = Some(hash),
    };
    loop {
        let event = match reader.next()? {
            None => break,
            Some(Event::Regular { executable, size }) => Some((executable, size)),
            Some(Event::Symlink { target }) => {
                let hash = blob_hash(algo, target);
                done(&mut stack, "120000", hash);
                None
            }
            Some(Event::DirectoryStart) => {
                stack.push((Vec::new(), Vec::new()));
                None
            }
            Some(Event::Entry { name }) => {
                let name = name.to_vec();
                if let Some(top) = stack.last_mut() {
                    top.1 = name;
                }
                None
            }
            Some(Event::DirectoryEnd) => {
                let (entries, _) = stack.pop().ok_or(GitHashError::Incomplete)?;
                let hash = tree_hash(algo, entries);
                done(&mut stack, "40000", hash);
                None
            }
        };
        if let Some((executable, size)) = event {
            let mut h = Hasher::new(algo);
            h.update(format!("blob {size}\0").as_bytes());
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read_contents(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            done(&mut stack, if executable { "100755" } else { "100644" }, h.finish());
        }
    }
    result.ok_or(GitHashError::Incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nar_of(path: &std::path::Path) -> Vec<u8> {
        let mut out = Vec::new();
        crate::nar::dump_path(path, &mut out).unwrap();
        out
    }

    // Expected values are what `git rev-parse HEAD:<path>` gives (Nix 2.26's git-hashing tests).
    #[test]
    fn hashes_match_git() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "Hello World\n").unwrap();
        let h = hash_nar(&nar_of(&file)[..], Algorithm::Sha1).unwrap();
        assert_eq!(h.to_base16(), "557db03de997c86a4a028e1ebd3a1ceb225be238");

        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("hello"), "Hello World\n").unwrap();
        std::fs::write(tree.join("executable"), "Run Hello World\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tree.join("executable"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = hash_nar(&nar_of(&tree)[..], Algorithm::Sha1).unwrap();
        assert_eq!(h.to_base16(), "e5c0a11a556801a5c9dcf330ca9d7e2c572697f4");

        let d4 = dir.path().join("dummy4");
        std::fs::create_dir_all(d4.join("dir")).unwrap();
        std::fs::write(d4.join("dir/file"), "").unwrap();
        std::os::unix::fs::symlink("./hello/world.txt", d4.join("dir/symlink")).unwrap();
        let h = hash_nar(&nar_of(&d4)[..], Algorithm::Sha1).unwrap();
        assert_eq!(h.to_base16(), "06f3e789820fc488d602358f03e3a1cbf993bf33");
    }

    #[test]
    fn directories_sort_as_if_ending_in_a_slash() {
        // `a.b` (file) sorts before `a/` (directory) in Git: '.' < '/'; and `a0` after.
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::create_dir_all(t.join("a")).unwrap();
        std::fs::write(t.join("a/x"), "x").unwrap();
        std::fs::write(t.join("a.b"), "y").unwrap();
        std::fs::write(t.join("a0"), "z").unwrap();
        let entries = vec![
            Entry { key: b"a0".to_vec(), mode: "100644", hash: blob_hash(Algorithm::Sha1, b"z") },
            Entry { key: b"a/".to_vec(), mode: "40000", hash: tree_hash(Algorithm::Sha1, vec![Entry { key: b"x".to_vec(), mode: "100644", hash: blob_hash(Algorithm::Sha1, b"x") }]) },
            Entry { key: b"a.b".to_vec(), mode: "100644", hash: blob_hash(Algorithm::Sha1, b"y") },
        ];
        assert_eq!(hash_nar(&nar_of(&t)[..], Algorithm::Sha1).unwrap(), tree_hash(Algorithm::Sha1, entries));
        assert!(hash_nar(&b"garbage"[..], Algorithm::Sha1).is_err());
    }
}
