//! The collector beyond valid paths: runtime roots (a process holding a file open keeps its
//! path, named `/proc/<pid>/fd/<n>` as Nix names it), the store directory's other entries
//! (leftovers deleted as Nix deletes them, but not while their path is locked or temp-rooted),
//! and unused castore blobs swept.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use castore::Durability;
use common::NixStore;
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use nix_formats::store_path::StorePath;
use store::gc::{GcAction, GcOptions, GcResult};
use store::local::PathLock;
use store::{Store, StoreConfig, TempRootsScope};

fn open(nix: &NixStore, scope: TempRootsScope) -> Store {
    let mut config = StoreConfig::new(nix.store_path_dir().to_str().unwrap(), nix.state_dir());
    config.durability = Durability::Unsynced;
    config.temp_roots = scope;
    Store::open(&config).unwrap()
}

fn collect(store: &Store, action: GcAction) -> GcResult {
    store.collect_garbage(&GcOptions::new(action)).unwrap()
}

/// A child process holding `file` open on descriptor 3; returns once `/proc` shows it.
fn hold_open(file: &Path) -> Child {
    let mut child = Command::new("sh").args(["-c", "exec 3<\"$0\" && exec sleep 60"]).arg(file).spawn().unwrap();
    let fd = format!("/proc/{}/fd/3", child.id());
    for _ in 0..1000 {
        if std::fs::read_link(&fd).is_ok_and(|t| t == file) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("the child never opened {}", file.display());
}

#[test]
fn an_open_file_keeps_its_path() {
    let nix = NixStore::new("");
    let setup = open(&nix, TempRootsScope::Own);
    let src = nix.root.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "held open").unwrap();
    let held = setup.add_path(&src, "held", Method::Nar, Algorithm::Sha256).unwrap().path;
    drop(setup);
    let store = open(&nix, TempRootsScope::Process);
    let mut child = hold_open(&store.real_path(&held).join("f"));
    let link = format!("/proc/{}/fd/3", child.id());

    let roots = store.find_roots(false).unwrap();
    assert!(roots[&held].contains(&link), "{roots:?}");
    assert!(store.find_roots(true).unwrap()[&held].contains("{censored}"));
    // Nix 2.8 names the same root the same way.
    let nix_roots = nix.run("nix-store", &["--gc", "--print-roots"]);
    assert!(nix_roots.lines().any(|l| l == format!("{link} -> {}", store.print(&held))), "{nix_roots}");

    assert!(collect(&store, GcAction::DeleteDead).paths.is_empty());
    assert!(store.real_path(&held).join("f").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(collect(&store, GcAction::DeleteDead).paths, [held].into());
}

fn entry(store: &Store, name: &str) -> std::path::PathBuf {
    store.real_store_dir().join(name)
}

fn fake(hash_char: char, name: &str) -> StorePath {
    StorePath::from_base_name(&format!("{}-{name}", hash_char.to_string().repeat(32))).unwrap()
}

/// The store directory of `store` after a valid path and every kind of leftover are placed.
struct Leftovers {
    valid: StorePath,
    stale_lock: StorePath,
    unregistered: StorePath,
    busy: StorePath,
    rooted: StorePath,
}

fn place_leftovers(store: &Store) -> Leftovers {
    let valid = store.add_text("valid", b"valid", &BTreeSet::new()).unwrap().path;
    let stale_lock = fake('0', "stale.lock");
    std::fs::write(entry(store, &stale_lock.to_string()), "").unwrap();
    let unregistered = fake('1', "unreg");
    std::fs::create_dir(entry(store, &unregistered.to_string())).unwrap();
    std::fs::write(entry(store, &unregistered.to_string()).join("file"), "never registered").unwrap();
    let busy = fake('2', "busy");
    std::fs::create_dir(entry(store, &busy.to_string())).unwrap();
    let rooted = fake('3', "rooted");
    std::fs::create_dir(entry(store, &format!("{rooted}.tmp-1-1"))).unwrap();
    std::fs::write(entry(store, "junk"), "not a store path").unwrap();
    std::fs::create_dir(entry(store, "tmp-free")).unwrap();
    std::fs::create_dir_all(entry(store, ".links")).unwrap();
    std::fs::write(entry(store, ".links/kept"), "Nix's pool").unwrap();
    Leftovers { valid, stale_lock, unregistered, busy, rooted }
}

#[test]
fn leftovers_are_deleted_as_nix_deletes_them() {
    let nix = NixStore::new("");
    let store = open(&nix, TempRootsScope::Process);
    let setup = open(&nix, TempRootsScope::Own);
    let l = place_leftovers(&setup);
    drop(setup);
    // Without locks and roots, our dead entries are Nix 2.8's (Nix also lists `junk` and
    // `tmp-free`, which it deletes even when only asked to print).
    let ours = collect(&store, GcAction::ReturnDead).printed(store.store_dir());
    let nix_dead: BTreeSet<String> = nix.run("nix-store", &["--gc", "--print-dead"]).lines().map(str::to_owned).collect();
    assert_eq!(ours, nix_dead);
    assert!(ours.contains(&store.print(&l.busy)) && ours.contains(&store.print(&l.valid)));

    // Again, now with a path being added (its lock held) and a temp-rooted hash part.
    std::fs::write(entry(&store, "junk"), "not a store path").unwrap();
    let session = open(&nix, TempRootsScope::Own);
    session.add_temp_root(&l.rooted).unwrap();
    let lock = PathLock::acquire(&store.real_path(&l.busy)).unwrap();
    let dead = collect(&store, GcAction::ReturnDead);
    assert!(!dead.paths.contains(&l.busy) && !dead.paths.contains(&fake('3', "rooted.tmp-1-1")), "{dead:?}");
    let live = collect(&store, GcAction::ReturnLive);
    assert!(live.paths.contains(&fake('3', "rooted.tmp-1-1")), "Nix counts a temp-rooted entry alive");

    let result = collect(&store, GcAction::DeleteDead);
    let expected: BTreeSet<StorePath> = [l.valid.clone(), l.stale_lock.clone(), l.unregistered.clone()].into();
    assert_eq!(result.paths, expected);
    assert_eq!(result.other_entries, ["junk".to_owned()].into());
    assert!(result.bytes_freed > 0);
    for gone in [&l.valid, &l.stale_lock, &l.unregistered] {
        assert!(!entry(&store, &gone.to_string()).exists(), "{gone}");
    }
    assert!(!entry(&store, "junk").exists());
    assert!(entry(&store, &l.busy.to_string()).exists(), "its lock is held");
    assert!(entry(&store, &format!("{}.tmp-1-1", l.rooted)).exists(), "its hash part is a temporary root");
    // As Nix's collector: `.links` stays, its entries no store file uses go.
    assert!(entry(&store, ".links").is_dir());
    assert!(!entry(&store, ".links/kept").exists(), "an unused link");

    drop(lock);
    drop(session);
    let rest = collect(&store, GcAction::DeleteDead);
    assert_eq!(rest.paths, [l.busy.clone(), fake('3', "rooted.tmp-1-1")].into());
    let left: BTreeSet<String> =
        std::fs::read_dir(store.real_store_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(left, [".links".to_owned()].into());
}

#[test]
fn deleting_a_path_that_is_not_valid() {
    let nix = NixStore::new("");
    let store = open(&nix, TempRootsScope::Process);
    let absent = fake('4', "absent");
    let leftover = fake('5', "leftover");
    std::fs::create_dir(entry(&store, &leftover.to_string())).unwrap();
    // As Nix: reported deleted whether or not there was anything to delete.
    let result = collect(&store, GcAction::DeleteSpecific([absent.clone(), leftover.clone()].into()));
    assert_eq!(result.paths, [absent, leftover.clone()].into());
    assert!(!entry(&store, &leftover.to_string()).exists());
    // A temp-rooted one is alive.
    let session = open(&nix, TempRootsScope::Own);
    let rooted = fake('6', "rooted");
    session.add_temp_root(&rooted).unwrap();
    let err = store.collect_garbage(&GcOptions::new(GcAction::DeleteSpecific([rooted].into()))).unwrap_err();
    assert!(matches!(err, store::StoreError::StillAlive(_)), "{err}");
}

fn pool_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(pool_files(&e.path()));
        } else {
            out.insert(e.file_name().into_string().unwrap());
        }
    }
    out
}

#[test]
fn deleting_sweeps_unused_blobs() {
    let nix = NixStore::new("");
    let store = open(&nix, TempRootsScope::Process);
    let blobs = nix.state_dir().join("casnix/castore/blobs");
    let before = pool_files(&blobs);
    // A blob no tree uses (as a crash between ingest and materialisation leaves).
    use castore::BlobService;
    store.castore().blobs().write_bytes(&b"orphan ".repeat(1000), false).unwrap();
    store.castore().blobs().flush().unwrap();
    assert_eq!(pool_files(&blobs).len(), before.len() + 1);
    assert!(collect(&store, GcAction::ReturnDead).paths.is_empty());
    assert_eq!(pool_files(&blobs).len(), before.len() + 1, "reporting deletes nothing");
    collect(&store, GcAction::DeleteDead);
    assert_eq!(pool_files(&blobs), before);
}
