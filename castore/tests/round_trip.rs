//! Ingest → render round trips: rendering an ingested tree gives exactly the NAR Nix would dump.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use castore::{Castore, Node};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn tree_ingest_renders_as_dump_path(spec in common::tree()) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        common::write(&spec, &source);
        let expected = common::dump(&source);
        let store = Castore::open(dir.path().join("castore")).unwrap();
        let ingested = store.ingest_path(&source).unwrap();
        let root = ingested.root.clone();
        prop_assert_eq!(ingested.nar_size, expected.len() as u64);
        prop_assert_eq!(&ingested.nar_hash, &nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, &expected));
        let rendered = store.render_nar(&root, Vec::new()).unwrap();
        prop_assert!(rendered == expected, "rendered NAR differs from dump_path");
        let (hash, size) = store.nar_hash(&root).unwrap();
        prop_assert_eq!((hash, size), nix_formats::nar::hash_path(&source, nix_formats::hash::Algorithm::Sha256).unwrap());

        // The NAR ingests to the same root, and its hash and size are the dump's.
        let ingested = store.ingest_nar(&expected[..]).unwrap();
        prop_assert_eq!(&ingested.root, &root);
        prop_assert_eq!(ingested.nar_size, expected.len() as u64);
        prop_assert_eq!(ingested.nar_hash, nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, &expected));

        // A second castore, fed only the NAR, renders it byte for byte.
        let other = Castore::open(dir.path().join("other")).unwrap();
        let from_nar = other.ingest_nar(&expected[..]).unwrap();
        prop_assert!(other.render_nar(&from_nar.root, Vec::new()).unwrap() == expected);

        // Materialised, the tree dumps to the same NAR.
        let out = dir.path().join("out");
        store.materialise_atomically(&root, &out).unwrap();
        prop_assert!(common::dump(&out) == expected);
        castore::remove_tree(&out).unwrap();
    }
}

#[test]
fn large_files_and_many_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    std::fs::create_dir(&source).unwrap();
    // Larger than the writer's in-memory limit and the read-ahead chunk, and not aligned.
    std::fs::write(source.join("big"), common::noise(3 * 1024 * 1024 + 5, 1)).unwrap();
    std::fs::write(source.join("big-copy"), common::noise(3 * 1024 * 1024 + 5, 1)).unwrap();
    for i in 0..300 {
        std::fs::write(source.join(format!("small-{i}")), common::noise(i * 37, i as u64)).unwrap();
    }
    let store = Castore::open(dir.path().join("castore")).unwrap();
    let root = store.ingest_path(&source).unwrap().root;
    assert!(matches!(root, Node::Directory { size: 302, .. }));
    let expected = common::dump(&source);
    assert!(store.render_nar(&root, Vec::new()).unwrap() == expected);
    let again = store.ingest_nar(std::io::BufReader::new(&expected[..])).unwrap();
    assert_eq!(again.root, root);
}

#[test]
fn root_file_and_root_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let store = Castore::open(dir.path().join("castore")).unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"hello").unwrap();
    let root = store.ingest_path(&file).unwrap().root;
    assert!(matches!(root, Node::File { size: 5, executable: false, .. }));
    assert_eq!(store.render_nar(&root, Vec::new()).unwrap(), common::dump(&file));
    let link = dir.path().join("l");
    std::os::unix::fs::symlink("/nowhere/at all", &link).unwrap();
    let root = store.ingest_path(&link).unwrap().root;
    assert!(matches!(&root, Node::Symlink { target } if target.as_bytes() == b"/nowhere/at all"));
    assert_eq!(store.render_nar(&root, Vec::new()).unwrap(), common::dump(&link));
}
