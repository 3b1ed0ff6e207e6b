//! `auto-optimise-store = false` semantics and Nix's `.links`: files a path shares with other
//! paths get private copies (`Store::unshare_files`), the path stays readable and verifiable
//! without its castore root, and after Nix's `nix-store --optimise` has linked files into
//! `.links` (and casnix has recorded shared inodes there), the collector leaves neither
//! `.links` entries nor pool files behind.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use castore::Durability;
use store::gc::{GcAction, GcOptions};
use store::{Store, StoreConfig, TempRootsScope};

fn open(root: &Path, scope: TempRootsScope) -> Store {
    let mut config = StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"));
    config.durability = Durability::Unsynced;
    config.temp_roots = scope;
    Store::open(&config).unwrap()
}

fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| if e.file_type().unwrap().is_dir() { files_under(&e.path()) } else { 1 })
        .sum()
}

#[test]
fn shared_files_get_private_copies_and_links_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let adder = open(root, TempRootsScope::Own);
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/foo"), "hello\n").unwrap();
    std::fs::write(src.join("unique"), "only here\n").unwrap();
    let one = adder.add_path(&src, "one", nix_formats::content_address::Method::Nar, nix_formats::hash::Algorithm::Sha256).unwrap();
    let two = adder.add_text("two", b"hello\n", &BTreeSet::new()).unwrap();
    let foo = adder.real_path(&one.path).join("sub/foo");
    let two_file = adder.real_path(&two.path);
    assert_eq!(std::fs::metadata(&foo).unwrap().ino(), std::fs::metadata(&two_file).unwrap().ino());
    let nar_before = adder.nar_from_path(&one.path, Vec::new()).unwrap();

    // Only the shared file is copied; the other keeps its pool link, the directory its mode.
    assert_eq!(adder.unshare_files(&one.path).unwrap(), 1);
    // The shared inode is recorded in `.links` as Nix's optimiser records it.
    let links = root.join("store/.links");
    let recorded: Vec<_> = std::fs::read_dir(&links).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(std::fs::metadata(&recorded[0]).unwrap().ino(), std::fs::metadata(&two_file).unwrap().ino());
    assert_ne!(std::fs::metadata(&foo).unwrap().ino(), std::fs::metadata(&two_file).unwrap().ino());
    assert_eq!(std::fs::metadata(&foo).unwrap().nlink(), 1);
    assert_eq!(std::fs::metadata(adder.real_path(&one.path).join("unique")).unwrap().nlink(), 2);
    let sub = std::fs::metadata(adder.real_path(&one.path).join("sub")).unwrap();
    assert_eq!((sub.mode() & 0o777, sub.mtime()), (0o555, 1));
    assert_eq!(std::fs::metadata(&foo).unwrap().mode() & 0o777, 0o444);
    assert!(adder.castore_root(&one.path).unwrap().is_none());
    assert_eq!(adder.nar_from_path(&one.path, Vec::new()).unwrap(), nar_before);
    assert!(adder.verify_path(&one.path, true).unwrap().is_none());
    // A single-file path: the store directory keeps its mode.
    assert_eq!(adder.unshare_files(&two.path).unwrap(), 0, "no other path shares it now");
    assert_eq!(adder.unshare_files(&one.path).unwrap(), 0);

    // What Nix's `nix-store --optimise` leaves: `.links` entries linked to store files.
    std::fs::hard_link(&foo, links.join("aaaa")).unwrap();
    std::fs::write(links.join("cccc"), "unused").unwrap();
    drop(adder);
    let collector = open(root, TempRootsScope::Own);
    let result = collector.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap();
    assert_eq!(result.paths.len(), 2);
    assert_eq!(files_under(&links), 0, ".links must be empty after the collection");
    assert_eq!(files_under(&root.join("state/casnix/castore/blobs")), 0, "no pool file left");
}
