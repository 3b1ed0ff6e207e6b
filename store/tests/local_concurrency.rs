//! Eight processes' worth of stores (separate `Store` instances, one per thread) adding
//! overlapping paths at once: no errors, every path valid once, every content stored once in
//! the pool.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::path::Path;

use castore::Durability;
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use store::{Store, StoreConfig};

const WORKERS: usize = 8;
const TREES: usize = 12;

fn open(root: &Path) -> Store {
    let mut config = StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"));
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

/// Pool files (not temporaries) under the castore's blob directory.
fn pool_files(blobs: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for fan in std::fs::read_dir(blobs).unwrap() {
        let fan = fan.unwrap();
        if fan.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(fan.path()).unwrap() {
            let name = f.unwrap().file_name().into_string().unwrap();
            if !name.starts_with(".tmp") {
                names.push(name);
            }
        }
    }
    names
}

fn make_sources(root: &Path) {
    for k in 0..TREES {
        let src = root.join(format!("src/t{k}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("common"), "in every tree").unwrap();
        std::fs::write(src.join("own"), format!("tree {k}")).unwrap();
    }
}

/// Worker `w`'s adds, walking the trees from its own start; returns the paths, printed.
fn work(root: &Path, w: usize) -> BTreeSet<String> {
    let store = open(root);
    let mut added = BTreeSet::new();
    for i in 0..TREES {
        let k = (i + w * 5) % TREES;
        let tree = store.add_path(&root.join(format!("src/t{k}")), &format!("t{k}"), Method::Nar, Algorithm::Sha256).unwrap();
        let text = store.add_text(&format!("x{k}"), store.print(&tree.path).as_bytes(), &[tree.path.clone()].into()).unwrap();
        added.insert(store.print(&tree.path));
        added.insert(store.print(&text.path));
    }
    added
}

#[test]
fn concurrent_stores_add_overlapping_paths_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_sources(root);
    drop(open(root));
    let results: Vec<BTreeSet<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS).map(|w| s.spawn(move || work(root, w))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]), "every worker got the same paths");
    check(root);
}

const CHILD_ENV: &str = "CASNIX_CONCURRENCY_CHILD";

#[test]
fn concurrent_processes_add_overlapping_paths_once() {
    if let (Some(root), Ok(w)) = (std::env::var_os(CHILD_ENV), std::env::var("CASNIX_WORKER")) {
        for line in work(Path::new(&root), w.parse().unwrap()) {
            println!("{line}");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_sources(root);
    drop(open(root));
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::process::Command::new(&exe)
                .args(["concurrent_processes_add_overlapping_paths_once", "--exact", "--nocapture", "--test-threads=1", "-q"])
                .env(CHILD_ENV, root)
                .env("CASNIX_WORKER", w.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let printed: Vec<BTreeSet<String>> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with('/')).map(str::to_owned).collect()
        })
        .collect();
    assert_eq!(printed[0].len(), 2 * TREES);
    assert!(printed.windows(2).all(|w| w[0] == w[1]), "every process got the same paths");
    check(root);
}

/// Every path valid once and verified, one pool file per content, no lock files left.
fn check(root: &Path) {
    let store = open(root);
    let valid = store.query_all_valid_paths().unwrap();
    assert_eq!(valid.len(), 2 * TREES);
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());
    // Contents: "in every tree", TREES distinct "own" files, TREES texts; each stored once.
    let pool = pool_files(&store.castore().root().join(castore::BLOBS_DIR));
    assert_eq!(pool.len(), 1 + 2 * TREES, "{pool:?}");
    let leftover_locks = std::fs::read_dir(store.real_store_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().ends_with(".lock"))
        .count();
    assert_eq!(leftover_locks, 0, "locks are removed when released");
}
