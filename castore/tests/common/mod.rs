//! Shared test helpers: random trees, written to disk.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;

/// A tree to write to disk.
#[derive(Debug, Clone)]
pub enum Spec {
    File { contents: Vec<u8>, executable: bool },
    Symlink(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Spec>),
}

/// File contents: often shared between files (to exercise deduplication), sometimes empty.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"shared contents\n".to_vec()),
        Just(vec![7u8; 5000]),
        proptest::collection::vec(any::<u8>(), 0..3000),
    ]
}

/// Names that sort differently as bytes and as text, and need not be UTF-8.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9._-]{1,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..8),
    ]
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn leaf() -> impl Strategy<Value = Spec> {
    prop_oneof![
        4 => (contents(), any::<bool>()).prop_map(|(contents, executable)| Spec::File { contents, executable }),
        1 => proptest::collection::vec(1u8..=255, 1..40).prop_map(Spec::Symlink),
    ]
}

/// Random trees, directories up to four levels deep.
pub fn tree() -> impl Strategy<Value = Spec> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        proptest::collection::btree_map(name(), inner, 0..8).prop_map(Spec::Dir)
    })
}

/// Writes `spec` at `path`.
pub fn write(spec: &Spec, path: &Path) {
    match spec {
        Spec::File { contents, executable } => {
            fs::write(path, contents).unwrap();
            let mode = if *executable { 0o755 } else { 0o644 };
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
        Spec::Symlink(target) => std::os::unix::fs::symlink(OsStr::from_bytes(target), path).unwrap(),
        Spec::Dir(entries) => {
            fs::create_dir(path).unwrap();
            for (name, child) in entries {
                write(child, &path.join(OsStr::from_bytes(name)));
            }
        }
    }
}

/// The NAR of the tree at `path`, as `nix-store --dump` writes it.
pub fn dump(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    nix_formats::nar::dump_path(path, &mut out).unwrap();
    out
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
