//! The local store against the real Nix 2.8 on one isolated root: paths that casnix adds are
//! seen and verified by Nix, and a store that Nix filled is read and verified by casnix.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::NixStore;
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use store::{Store, StoreConfig};

fn open(nix: &NixStore) -> Store {
    Store::open(&StoreConfig::new(nix.store_path_dir().to_str().unwrap(), nix.state_dir())).unwrap()
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (name, contents) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

#[test]
fn nix_sees_and_verifies_what_casnix_adds() {
    let nix = NixStore::new("");
    let work = nix.root.path().join("work");
    let (dep, mid, top) = {
        let store = open(&nix);
        let dep = store.add_text("dep.txt", b"a dependency\n", &BTreeSet::new()).unwrap().path;
        let mid_src = work.join("mid");
        write_tree(&mid_src, &[("bin/tool", "#!/bin/sh\n"), ("share/ref", &store.print(&dep))]);
        let mut nar = Vec::new();
        nix_formats::nar::dump_path(&mid_src, &mut nar).unwrap();
        let mid = store.add_to_store("mid", Method::Nar, Algorithm::Sha256, &[dep.clone()].into(), &nar[..]).unwrap().path;
        let top = store
            .add_text("top", format!("{} {}", store.print(&mid), store.print(&dep)).as_bytes(), &[mid.clone(), dep.clone()].into())
            .unwrap()
            .path;
        (store.print(&dep), store.print(&mid), store.print(&top))
    };
    assert_eq!(nix.query("--references", &top), [mid.clone(), dep.clone()].into());
    assert_eq!(nix.query("--references", &mid), [dep.clone()].into());
    assert_eq!(nix.query("--requisites", &top), [top.clone(), mid.clone(), dep.clone()].into());
    assert_eq!(nix.query("--referrers", &dep), [mid.clone(), top.clone()].into());
    let verify = nix.output("nix-store", &["--verify", "--check-contents"]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(!stderr.contains("modified") && !stderr.contains("disappeared"), "{stderr}");

    // Nix's path-info agrees with ours, field by field.
    let store = open(&nix);
    let infos = nix.nix_path_infos();
    assert_eq!(infos.len(), 3);
    for (path, nix_info) in infos {
        let ours = store.query_path_info(&path).unwrap().unwrap();
        assert_eq!(ours.nar_hash, nix_info.nar_hash);
        assert_eq!(ours.nar_size, nix_info.nar_size);
        assert_eq!(ours.references, nix_info.references);
        assert_eq!(ours.ca, nix_info.ca);
        // And the NAR Nix dumps from the store directory is the one we render from castore.
        let dumped = nix.output("nix-store", &["--dump", &store.print(&path)]).stdout;
        assert!(store.castore_root(&path).unwrap().is_some());
        assert_eq!(store.nar_from_path(&path, Vec::new()).unwrap(), dumped);
    }
    // Nix can add on top of casnix's paths, and delete them.
    drop(store);
    nix.run("nix-store", &["--delete", &top]);
    let store = open(&nix);
    assert_eq!(store.query_all_valid_paths().unwrap().len(), 2);
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());
}

#[test]
fn casnix_reads_and_verifies_a_store_nix_filled() {
    let nix = NixStore::new("");
    let work = nix.root.path().join("work");
    write_tree(&work, &[("plain.txt", "hello\n"), ("dir/sub/x", "x"), ("flat.txt", "flat\n")]);
    let w = |name: &str| work.join(name).to_str().unwrap().to_owned();
    let added: Vec<String> = nix.run("nix-store", &["--add", &w("plain.txt"), &w("dir")]).lines().map(str::to_owned).collect();
    let flat = nix.run("nix-store", &["--add-fixed", "sha256", &w("flat.txt")]).trim().to_owned();
    let drv = nix
        .run("nix-instantiate", &["--expr", "derivation { name = \"d\"; system = \"x\"; builder = \"/bin/sh\"; src = builtins.toFile \"s\" \"s\"; }"])
        .trim()
        .to_owned();

    let store = open(&nix);
    let sd = store.store_dir().clone();
    let all = store.query_all_valid_paths().unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
    for path in &all {
        let printed = sd.print(path);
        let dumped = nix.output("nix-store", &["--dump", &printed]).stdout;
        assert_eq!(store.castore_root(path).unwrap(), None, "Nix's paths have no castore root");
        assert_eq!(store.nar_from_path(path, Vec::new()).unwrap(), dumped, "{printed}");
        assert_eq!(store.verify_path(path, true).unwrap(), None);
    }
    let drv_path = sd.parse(&drv).unwrap();
    assert_eq!(store.query_derivation_outputs(&drv_path).unwrap().len(), 1);
    assert_eq!(store.query_references(&drv_path).unwrap().len(), 1);
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());

    // Adding the same contents through casnix finds Nix's paths valid.
    let again = store.add_path(&work.join("dir"), "dir", Method::Nar, Algorithm::Sha256).unwrap();
    assert_eq!(sd.print(&again.path), added[1]);
    let again = store.add_path(&work.join("flat.txt"), "flat.txt", Method::Flat, Algorithm::Sha256).unwrap();
    assert_eq!(sd.print(&again.path), flat);
    assert_eq!(store.query_all_valid_paths().unwrap().len(), 5);

    // Adopting Nix's paths gives them castore roots and pool-backed files, contents unchanged.
    let mine = store.add_text("mine", b"x", &BTreeSet::new()).unwrap().path;
    let x_path = sd.parse(&added[1]).unwrap();
    assert!(store.adopt_path(&x_path).unwrap());
    assert!(!store.adopt_path(&x_path).unwrap());
    assert!(!store.adopt_path(&mine).unwrap(), "casnix's own paths have roots already");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(store.real_path(&x_path).join("sub/x")), ino(store.real_path(&mine)), "same bytes, one inode");
    assert!(store.castore_root(&x_path).unwrap().is_some());
    assert_eq!(store.nar_from_path(&x_path, Vec::new()).unwrap(), nix.output("nix-store", &["--dump", &added[1]]).stdout);
    drop(store);
    nix.run("nix-store", &["--verify", "--check-contents"]);
}

#[test]
fn export_and_import_match_nix() {
    let nix = NixStore::new("");
    let work = nix.root.path().join("work");
    write_tree(&work, &[("nixs/file", "added by Nix\n")]);
    let nix_path = nix.run("nix-store", &["--add", work.join("nixs").to_str().unwrap()]).trim().to_owned();
    let store = open(&nix);
    let sd = store.store_dir().clone();
    let base = sd.parse(&nix_path).unwrap();
    let dep = store.add_text("dep", store.print(&base).as_bytes(), &[base.clone()].into()).unwrap().path;
    let top = store.add_text("top", store.print(&dep).as_bytes(), &[dep.clone()].into()).unwrap().path;
    let all: BTreeSet<_> = [base.clone(), dep.clone(), top.clone()].into();

    // Byte for byte what Nix exports, for paths either of us added.
    let ours = store.export_paths(&all, Vec::new()).unwrap();
    let printed: Vec<String> = all.iter().map(|p| sd.print(p)).collect();
    let args: Vec<&str> = ["--export"].into_iter().chain(printed.iter().map(String::as_str)).collect();
    let theirs = nix.output("nix-store", &args).stdout;
    assert_eq!(ours, theirs);

    // Delete everything, then import Nix's stream: the paths are back, with castore roots.
    assert_eq!(store.delete_paths(all.iter()).unwrap(), all);
    assert!(store.query_all_valid_paths().unwrap().is_empty());
    let imported = store.import_paths(&theirs[..]).unwrap();
    assert_eq!(imported.into_iter().collect::<BTreeSet<_>>(), all);
    assert_eq!(store.query_references(&top).unwrap(), [dep.clone()].into());
    for p in &all {
        assert!(store.castore_root(p).unwrap().is_some());
    }
    // Importing again is harmless; a truncated stream is refused.
    assert_eq!(store.import_paths(&theirs[..]).unwrap().len(), 3);
    assert!(store.import_paths(&theirs[..theirs.len() - 9]).is_err());
    drop(store);
    nix.run("nix-store", &["--verify", "--check-contents"]);
    assert_eq!(nix.query("--requisites", &sd.print(&top)).len(), 3);
}

#[test]
fn nix_gc_keeps_the_temporary_roots_of_a_live_store() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let kept = store.add_text("kept", b"in use by a live process", &BTreeSet::new()).unwrap().path;
    let printed = store.print(&kept);
    let roots = std::fs::read(nix.state_dir().join("temproots").join(std::process::id().to_string())).unwrap();
    assert!(roots.split(|b| *b == 0).any(|r| r == printed.as_bytes()), "Nix's temproots format");
    // A path added by Nix, with no roots, is collected; ours, a temporary root, is not.
    let work = nix.root.path().join("work");
    write_tree(&work, &[("gone", "collected")]);
    let gone = nix.run("nix-store", &["--add", work.join("gone").to_str().unwrap()]).trim().to_owned();
    nix.run("nix-store", &["--gc"]);
    assert!(store.is_valid(&kept).unwrap());
    assert!(!store.is_valid(&store.store_dir().parse(&gone).unwrap()).unwrap());
    assert!(store.verify_path(&kept, true).unwrap().is_none());
    // Once the store is closed its temporary roots are gone, and so is the path at the next GC.
    drop(store);
    assert!(!nix.state_dir().join("temproots").join(std::process::id().to_string()).exists());
    nix.run("nix-store", &["--gc"]);
    assert!(!open(&nix).is_valid(&kept).unwrap());
}
