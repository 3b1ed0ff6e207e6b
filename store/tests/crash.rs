//! Crash consistency: a child process adds (and sometimes deletes) paths in a loop and is killed
//! with SIGKILL at random moments, 200 times. After each kill every valid path verifies against
//! its NAR hash (on disk and as rendered from the castore), and adding the same paths again
//! succeeds. At the end the real Nix verifies the store too.
//!
//! The child is this test binary itself, re-run with `CASNIX_CRASH_CHILD` set.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::NixStore;
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use store::{Store, StoreConfig};

const CHILD_ENV: &str = "CASNIX_CRASH_CHILD";
const KILLS: usize = 200;
const TREES: u64 = 24;

/// A small xorshift generator: enough randomness for kill timings and choices.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        Self(t ^ (u64::from(std::process::id()) << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn open(root: &Path) -> Store {
    Store::open(&StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"))).unwrap()
}

fn source(root: &Path, k: u64) -> PathBuf {
    root.join("sources").join(format!("t{k}"))
}

/// Trees of a few files; every tree shares one file with the others, so pool files are shared
/// between store paths (and deleting one path must not break another).
fn make_sources(root: &Path) {
    for k in 0..TREES {
        let dir = source(root, k);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("common"), "shared by every tree\n").unwrap();
        std::fs::write(dir.join("own"), format!("tree {k}\n").repeat(1 + k as usize * 50)).unwrap();
        std::fs::write(dir.join("sub/pair"), format!("pair {}\n", k / 2)).unwrap();
    }
}

/// Adds tree `k` and a text referring to it; returns both paths.
fn add_pair(store: &Store, root: &Path, k: u64) -> (nix_formats::store_path::StorePath, nix_formats::store_path::StorePath) {
    let tree = store.add_path(&source(root, k), &format!("t{k}"), Method::Nar, Algorithm::Sha256).unwrap().path;
    let text = store.add_text(&format!("x{k}"), store.print(&tree).as_bytes(), &[tree.clone()].into()).unwrap().path;
    (tree, text)
}

fn child(root: &Path) -> ! {
    let store = open(root);
    let mut rng = Rng::seeded();
    loop {
        let k = rng.below(TREES);
        let (tree, text) = add_pair(&store, root, k);
        if rng.below(4) == 0 {
            store.delete_paths([&tree, &text]).unwrap();
        }
    }
}

fn check(store: &Store) -> usize {
    let valid = store.query_all_valid_paths().unwrap();
    for path in &valid {
        assert_eq!(store.verify_path(path, true).unwrap(), None, "{}", store.print(path));
        let info = store.query_path_info(path).unwrap().unwrap();
        let root = store.castore_root(path).unwrap().expect("every path casnix added has a castore root");
        assert_eq!(store.castore().nar_hash(&root).unwrap(), (info.nar_hash, info.nar_size));
        for r in &info.references {
            assert!(valid.contains(r), "a reference of a valid path is valid");
        }
    }
    valid.len()
}

/// Entries of the store directory that are not valid paths: lock files, half-built trees, trees
/// renamed into place but not registered (the traces of kills in the middle of an add).
fn leftovers(store: &Store) -> usize {
    let valid: BTreeSet<String> = store.query_all_valid_paths().unwrap().iter().map(|p| p.to_string()).collect();
    std::fs::read_dir(store.real_store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // `.links` is Nix's (empty, kept for Nix's tools), not a leftover.
        .filter(|name| name != ".links" && !valid.contains(name))
        .count()
}

#[test]
fn killed_adds_never_leave_partial_valid_paths() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&root));
    }
    let nix = NixStore::new("");
    let root = nix.root.path().to_path_buf();
    make_sources(&root);
    drop(open(&root));
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::seeded();
    let started = Instant::now();
    let mut seen_valid = BTreeSet::new();
    let mut interrupted = 0;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["killed_adds_never_leave_partial_valid_paths", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(5_000 + rng.below(60_000)));
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("round {round}: the child stopped by itself ({status}): {}", String::from_utf8_lossy(&out.stderr));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let store = open(&root);
        seen_valid.insert(check(&store));
        interrupted += leftovers(&store);
        // With no add running, everything that is not a valid path is a leftover, and goes.
        store.remove_leftovers().unwrap();
        assert_eq!(leftovers(&store), 0, "round {round}: only valid paths remain");
        // The next add of the same paths succeeds, whatever state the kill left.
        for _ in 0..2 {
            let k = rng.below(TREES);
            let (tree, text) = add_pair(&store, &root, k);
            assert!(store.is_valid(&tree).unwrap() && store.is_valid(&text).unwrap());
        }
    }
    let store = open(&root);
    for k in 0..TREES {
        add_pair(&store, &root, k);
    }
    assert_eq!(check(&store), 2 * TREES as usize);
    drop(store);
    nix.run("nix-store", &["--verify", "--check-contents"]);
    assert!(seen_valid.len() > 1, "the kills landed at different moments: {seen_valid:?}");
    assert!(interrupted > 0, "some kills landed in the middle of an add");
    eprintln!("{KILLS} kills in {:?}; {interrupted} leftover entries seen (summed over rounds)", started.elapsed());
}
