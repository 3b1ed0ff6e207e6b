//! Differential tests against the real Nix (2.8 here): the NAR castore renders for an ingested
//! tree, its SHA-256 and size, are those of `nix-store --dump` and `nix-hash`; a NAR Nix dumped
//! ingests and renders back byte for byte. Requires `nix-store` and `nix-hash` on PATH.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::path::Path;
use std::process::Command;

use castore::Castore;
use common::Spec;
use proptest::prelude::*;

/// Runs a Nix tool with its state confined to `scratch`.
fn nix(program: &str, args: &[&std::ffi::OsStr], scratch: &Path) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .env("NIX_STORE_DIR", scratch.join("store"))
        .env("NIX_STATE_DIR", scratch.join("state"))
        .env("NIX_LOG_DIR", scratch.join("log"))
        .env("NIX_CONF_DIR", scratch.join("conf"))
        .env("NIX_REMOTE", "local")
        .env("HOME", scratch)
        .output()
        .unwrap_or_else(|e| panic!("running {program} (is Nix installed?): {e}"));
    assert!(output.status.success(), "{program} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Checks one tree against Nix.
fn check_against_nix(source: &Path, scratch: &Path, store: &Castore) {
    let nix_nar = nix("nix-store", &["--dump".as_ref(), source.as_os_str()], scratch);
    let nix_hash = String::from_utf8(nix("nix-hash", &["--type".as_ref(), "sha256".as_ref(), source.as_os_str()], scratch)).unwrap();

    let from_tree = store.ingest_path(source).unwrap();
    assert_eq!(from_tree.nar_hash.to_base16(), nix_hash.trim());
    assert_eq!(from_tree.nar_size, nix_nar.len() as u64);
    let root = from_tree.root;
    let rendered = store.render_nar(&root, Vec::new()).unwrap();
    assert!(rendered == nix_nar, "rendered NAR differs from nix-store --dump for {}", source.display());
    let (hash, size) = store.nar_hash(&root).unwrap();
    assert_eq!(hash.to_base16(), nix_hash.trim());
    assert_eq!(size, nix_nar.len() as u64);

    let ingested = store.ingest_nar(&nix_nar[..]).unwrap();
    assert_eq!(ingested.root, root);
    assert_eq!(ingested.nar_hash.to_base16(), nix_hash.trim());
    assert_eq!(ingested.nar_size, nix_nar.len() as u64);

    // The materialised tree is what Nix dumps to the same archive.
    let out = scratch.join("materialised");
    store.materialise_atomically(&root, &out).unwrap();
    let again = nix("nix-store", &["--dump".as_ref(), out.as_os_str()], scratch);
    assert!(again == nix_nar, "materialised tree dumps differently");
    castore::remove_tree(&out).unwrap();
}

#[test]
fn handmade_trees_match_nix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let file = |contents: Vec<u8>, executable| Spec::File { contents, executable };
    let trees = [
        file(Vec::new(), false),
        file(common::noise(3 * 1024 * 1024 + 3, 4), true),
        Spec::Symlink(b"../some where/\xff".to_vec()),
        Spec::Dir(Default::default()),
        Spec::Dir(
            [
                (b"B".to_vec(), file(b"upper".to_vec(), false)),
                (b"a".to_vec(), file(b"lower".to_vec(), true)),
                (b"\xc3\xa9t\xc3\xa9".to_vec(), Spec::Dir(Default::default())),
                (b"\xff raw".to_vec(), Spec::Symlink(b"a".to_vec())),
                (b"nested".to_vec(), Spec::Dir([(b"deep".to_vec(), file(common::noise(70_001, 5), false))].into())),
            ]
            .into(),
        ),
    ];
    for (i, spec) in trees.iter().enumerate() {
        let source = tmp.path().join(format!("tree{i}"));
        common::write(spec, &source);
        check_against_nix(&source, tmp.path(), &store);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_match_nix(spec in common::tree()) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Castore::open(tmp.path().join("castore")).unwrap();
        let source = tmp.path().join("src");
        common::write(&spec, &source);
        check_against_nix(&source, tmp.path(), &store);
    }
}
