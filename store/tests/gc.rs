//! Garbage collection: roots of every kind, the collector's actions against Nix 2.8's on the
//! same store, deletion order, pool blobs freed, byte limits, `keep-outputs`/`keep-derivations`.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command};

use castore::Durability;
use common::NixStore;
use nix_formats::store_path::StorePath;
use store::gc::{GcAction, GcOptions};
use store::{Store, StoreConfig, StoreError};

fn open(nix: &NixStore) -> Store {
    let mut config = StoreConfig::new(nix.store_path_dir().to_str().unwrap(), nix.state_dir());
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

fn text(store: &Store, name: &str, contents: &str, refs: &[&StorePath]) -> StorePath {
    let refs: BTreeSet<StorePath> = refs.iter().map(|p| (*p).clone()).collect();
    let mut body = contents.to_string();
    for r in &refs {
        body.push_str(&store.print(r));
    }
    store.add_text(name, body.as_bytes(), &refs).unwrap().path
}

fn gc(store: &Store, action: GcAction) -> BTreeSet<StorePath> {
    store.collect_garbage(&GcOptions::new(action)).unwrap().paths
}

fn nix_gc(nix: &NixStore, flag: &str) -> BTreeSet<String> {
    let prefix = format!("{}/", nix.store_path_dir().display());
    nix.run("nix-store", &["--gc", flag]).lines().filter(|l| l.starts_with(&prefix)).map(str::to_owned).collect()
}

fn printed(store: &Store, paths: &BTreeSet<StorePath>) -> BTreeSet<String> {
    paths.iter().map(|p| store.print(p)).collect()
}

fn set_keep(nix: &NixStore, keep_outputs: bool, keep_derivations: bool) {
    nix.set_features("");
    let conf = nix.root.path().join("conf/nix.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!("keep-outputs = {keep_outputs}\nkeep-derivations = {keep_derivations}\n"));
    std::fs::write(conf, text).unwrap();
}

/// A store with a permanent root, an indirect root, a stale indirect root, dead chains, and a
/// derivation instantiated and built by Nix. Returns (rooted direct, rooted indirect, drv).
fn populate(nix: &NixStore) -> (StorePath, StorePath, StorePath) {
    let store = open(nix);
    let a = text(&store, "a", "a", &[]);
    let b = text(&store, "b", "b", &[&a]);
    let c = text(&store, "c", "c", &[]);
    let d = text(&store, "d", "d", &[&c]);
    let e = text(&store, "e", "e", &[]);
    let _f = text(&store, "f", "f", &[&e, &a]);
    let gcroots = nix.state_dir().join("gcroots");
    std::fs::create_dir_all(gcroots.join("auto")).unwrap();
    symlink(store.print(&b), gcroots.join("perm")).unwrap();
    let result = nix.root.path().join("result");
    symlink(store.print(&d), &result).unwrap();
    symlink(&result, gcroots.join("auto/indirect")).unwrap();
    symlink(nix.root.path().join("gone"), gcroots.join("auto/stale")).unwrap();
    drop(store);
    let expr = "derivation { name = \"built\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo hi > $out\" ]; }";
    let drv = nix.run("nix-instantiate", &["--expr", expr]).trim().to_string();
    nix.run("nix-store", &["--realise", &drv]);
    let drv = nix.store_dir().parse(&drv).unwrap();
    (b, d, drv)
}

#[test]
fn roots_permanent_indirect_and_stale() {
    let nix = NixStore::new("");
    let (b, d, _) = populate(&nix);
    let store = open(&nix);
    let roots = store.find_roots(false).unwrap();
    assert_eq!(roots.keys().cloned().collect::<BTreeSet<_>>(), [b.clone(), d.clone()].into());
    let gcroots = nix.state_dir().join("gcroots");
    assert!(roots[&b].contains(&gcroots.join("perm").display().to_string()));
    // An indirect root is named by the link it leads to.
    assert!(roots[&d].contains(&nix.root.path().join("result").display().to_string()));
    assert!(std::fs::symlink_metadata(gcroots.join("auto/stale")).is_err(), "stale link removed");
    assert!(std::fs::symlink_metadata(gcroots.join("auto/indirect")).is_ok());
}

#[test]
fn live_and_dead_match_nix_for_every_keep_setting() {
    let nix = NixStore::new("");
    let (b, d, drv) = populate(&nix);
    for (keep_outputs, keep_derivations) in [(false, false), (false, true), (true, false), (true, true)] {
        set_keep(&nix, keep_outputs, keep_derivations);
        let store = open(&nix);
        let mut options = GcOptions::new(GcAction::ReturnLive);
        options.keep_outputs = keep_outputs;
        options.keep_derivations = keep_derivations;
        let live = store.collect_garbage(&options).unwrap().paths;
        options.action = GcAction::ReturnDead;
        let dead = store.collect_garbage(&options).unwrap().paths;
        drop(store);
        let what = format!("keep-outputs {keep_outputs}, keep-derivations {keep_derivations}");
        assert!(live.contains(&b) && live.contains(&d), "{what}");
        assert!(dead.contains(&drv), "nothing roots the derivation: {what}");
        let store = open(&nix);
        assert_eq!(printed(&store, &live), nix_gc(&nix, "--print-live"), "{what}");
        assert_eq!(printed(&store, &dead), nix_gc(&nix, "--print-dead"), "{what}");
    }
    // Rooting the derivation: its output lives only with keep-outputs.
    symlink(format!("{}/{}", nix.store_path_dir().display(), drv), nix.state_dir().join("gcroots/drv")).unwrap();
    for keep_outputs in [false, true] {
        set_keep(&nix, keep_outputs, true);
        let store = open(&nix);
        let mut options = GcOptions::new(GcAction::ReturnLive);
        options.keep_outputs = keep_outputs;
        let live = store.collect_garbage(&options).unwrap().paths;
        let out = &store.query_derivation_outputs(&drv).unwrap()["out"];
        assert_eq!(live.contains(out), keep_outputs);
        assert_eq!(printed(&store, &live), nix_gc(&nix, "--print-live"), "keep-outputs {keep_outputs}");
    }
}

#[test]
fn delete_dead_deletes_what_nix_calls_dead() {
    let nix = NixStore::new("");
    let (b, d, _) = populate(&nix);
    set_keep(&nix, false, true);
    let nix_dead = nix_gc(&nix, "--print-dead");
    let store = open(&nix);
    let result = store.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap();
    assert_eq!(printed(&store, &result.paths), nix_dead);
    assert!(result.bytes_freed > 0);
    for path in &result.paths {
        assert!(!store.real_path(path).exists(), "{path}");
    }
    let valid = store.query_all_valid_paths().unwrap();
    assert!(valid.contains(&b) && valid.contains(&d));
    drop(store);
    assert!(nix_gc(&nix, "--print-dead").is_empty());
    nix.run("nix-store", &["--verify", "--check-contents"]);
}

#[test]
fn delete_specific_refuses_live_paths() {
    let nix = NixStore::new("");
    let (b, _, _) = populate(&nix);
    let store = open(&nix);
    let a = store.query_references(&b).unwrap().into_iter().next().unwrap();
    let err = store.collect_garbage(&GcOptions::new(GcAction::DeleteSpecific([b.clone()].into()))).unwrap_err();
    assert!(matches!(err, StoreError::StillAlive(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "Cannot delete path '{}' since it is still alive. To find out why, use: nix-store --query --roots and nix-store --query --referrers",
            store.print(&b)
        )
    );
    // `a` is needed by the rooted `b` (and by `f`, not asked for).
    assert!(store.collect_garbage(&GcOptions::new(GcAction::DeleteSpecific([a.clone()].into()))).is_err());
    assert!(store.is_valid(&a).unwrap() && store.is_valid(&b).unwrap());
    // Ignoring liveness deletes a rooted path with its referrers asked for too.
    let mut options = GcOptions::new(GcAction::DeleteSpecific([b.clone()].into()));
    options.ignore_liveness = true;
    assert_eq!(store.collect_garbage(&options).unwrap().paths, [b.clone()].into());
    assert!(!store.is_valid(&b).unwrap());
}

#[test]
fn delete_specific_takes_a_dead_chain() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let x = text(&store, "x", "x", &[]);
    let y = text(&store, "y", "y", &[&x]);
    drop(store);
    let store = open(&nix);
    let alone = GcOptions::new(GcAction::DeleteSpecific([x.clone()].into()));
    assert!(matches!(store.collect_garbage(&alone), Err(StoreError::StillAlive(_))), "y refers to x");
    let both = GcOptions::new(GcAction::DeleteSpecific([x.clone(), y.clone()].into()));
    assert_eq!(store.collect_garbage(&both).unwrap().paths, [x, y].into());
}

fn pool_files(root: &Path) -> usize {
    walk_files(&root.join("state/casnix/castore/blobs"))
}

fn walk_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| if e.file_type().unwrap().is_dir() { walk_files(&e.path()) } else { 1 })
        .sum()
}

#[test]
fn blobs_go_with_their_last_user_and_max_freed_stops() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let src = nix.root.path().join("src");
    let add = |name: &str, files: &[(&str, String)]| {
        let dir = src.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, c) in files {
            std::fs::write(dir.join(f), c).unwrap();
        }
        store
            .add_path(&dir, name, nix_formats::content_address::Method::Nar, nix_formats::hash::Algorithm::Sha256)
            .unwrap()
            .path
    };
    let shared = "shared contents ".repeat(100);
    let live = add("live", &[("s", shared.clone())]);
    let dead = add("dead", &[("s", shared.clone()), ("own", "own contents".repeat(100))]);
    let others: Vec<StorePath> = (0..3).map(|i| add(&format!("o{i}"), &[("f", format!("{i}").repeat(1000))])).collect();
    symlink(store.print(&live), nix.state_dir().join("gcroots/live")).unwrap();
    drop(store);
    let store = open(&nix);
    let before = pool_files(nix.root.path());
    let mut limited = GcOptions::new(GcAction::DeleteDead);
    limited.max_freed = 1;
    let first = store.collect_garbage(&limited).unwrap();
    assert_eq!(first.paths.len(), 1, "stops after the first path frees more than 1 byte");
    assert!(first.bytes_freed >= 1000 || first.paths.contains(&dead));
    let rest = store.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap();
    let all: BTreeSet<StorePath> = first.paths.union(&rest.paths).cloned().collect();
    let mut expected: BTreeSet<StorePath> = others.into_iter().collect();
    expected.insert(dead.clone());
    assert_eq!(all, expected);
    // Four blobs gone (three others and `own`); the shared one stays with `live`.
    assert_eq!(pool_files(nix.root.path()), before - 4);
    assert_eq!(std::fs::read_to_string(store.real_path(&live).join("s")).unwrap(), shared);
    assert!(store.query_all_valid_paths().unwrap() == [live].into());
}

/// Holds the write lock of `temproots/<name>` in a child process.
fn hold_temp_roots(nix: &NixStore, name: &str, roots: &[String]) -> Child {
    let file = nix.state_dir().join("temproots").join(name);
    let mut contents = Vec::new();
    for r in roots {
        contents.extend_from_slice(r.as_bytes());
        contents.push(0);
    }
    std::fs::write(&file, contents).unwrap();
    // The shell locks the file on its descriptor 9 and becomes `sleep`, which keeps it.
    let child = Command::new("sh")
        .args(["-c", "exec 9<>\"$0\" && flock -x 9 && exec sleep 60"])
        .arg(&file)
        .spawn()
        .unwrap();
    // Wait until the child holds the lock.
    let probe = std::fs::File::open(&file).unwrap();
    for _ in 0..500 {
        match rustix::fs::flock(&probe, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                rustix::fs::flock(&probe, rustix::fs::FlockOperation::Unlock).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(_) => return child,
        }
    }
    panic!("the child never took the lock");
}

#[test]
fn temp_roots_of_live_processes_keep_paths() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let p = text(&store, "p", "p", &[]);
    let q = text(&store, "q", "q", &[&p]);
    // Our own process's temporary roots count.
    assert!(gc(&store, GcAction::ReturnDead).is_empty());
    drop(store);
    let mut child = hold_temp_roots(&nix, "4000000", &[format!("{}/{}", nix.store_path_dir().display(), q)]);
    let store = open(&nix);
    assert!(store.find_roots(false).unwrap()[&q].contains("{temp:4000000}"));
    assert!(gc(&store, GcAction::DeleteDead).is_empty(), "q and its reference p are temp-rooted");
    assert_eq!(nix_gc(&nix, "--print-dead"), BTreeSet::new(), "Nix reads our format");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(gc(&store, GcAction::DeleteDead), [p, q].into());
    assert!(!nix.state_dir().join("temproots/4000000").exists(), "the dead process's file is removed");
}
