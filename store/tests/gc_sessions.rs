//! Temporary roots per `Store` (`TempRootsScope::Own`, as a daemon's connections use) and the
//! collector's `gc-socket`: roots end with their `Store`; roots sent while a collection runs
//! (by casnix and by Nix 2.8's `nix-store --add`) keep their paths, and nobody waits for the
//! collection to end.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use castore::Durability;
use common::NixStore;
use nix_formats::store_path::StorePath;
use store::gc::{GcAction, GcOptions};
use store::{Store, StoreConfig, TempRootsScope};

const CHILD_ENV: &str = "CASNIX_GC_SESSIONS_CHILD";

fn open_scoped(store_dir: &Path, state_dir: &Path, scope: TempRootsScope) -> Store {
    let mut config = StoreConfig::new(store_dir.to_str().unwrap(), state_dir);
    config.durability = Durability::Unsynced;
    config.temp_roots = scope;
    Store::open(&config).unwrap()
}

fn open(nix: &NixStore, scope: TempRootsScope) -> Store {
    open_scoped(&nix.store_path_dir(), &nix.state_dir(), scope)
}

fn text(store: &Store, name: &str, contents: &str) -> StorePath {
    store.add_text(name, contents.as_bytes(), &BTreeSet::new()).unwrap().path
}

fn deleted(store: &Store) -> BTreeSet<StorePath> {
    store.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap().paths
}

fn temp_root_files(nix: &NixStore) -> BTreeSet<String> {
    std::fs::read_dir(nix.state_dir().join("temproots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn own_temp_roots_end_with_their_store() {
    let nix = NixStore::new("");
    let pid = std::process::id();
    let a = open(&nix, TempRootsScope::Own);
    let b = open(&nix, TempRootsScope::Own);
    let pa = text(&a, "pa", "rooted by a");
    let pb = text(&b, "pb", "rooted by b");
    let files = temp_root_files(&nix);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(&format!("{pid}-"))), "{files:?}");

    let collector = open(&nix, TempRootsScope::Process);
    let roots = collector.find_roots(false).unwrap();
    for p in [&pa, &pb] {
        assert_eq!(roots[p], [format!("{{temp:{pid}}}")].into(), "the file name gives the pid, as Nix reads it");
    }
    assert!(deleted(&collector).is_empty());
    // Nix 2.8 reads `<pid>-<n>` as the pid's file and keeps what a live one roots.
    let dead = nix.run("nix-store", &["--gc", "--print-dead"]);
    assert!(!dead.contains(&collector.print(&pa)) && !dead.contains(&collector.print(&pb)), "{dead}");
    nix.run("nix-store", &["--gc"]);
    assert!(collector.is_valid(&pa).unwrap() && collector.is_valid(&pb).unwrap());

    drop(a);
    assert_eq!(temp_root_files(&nix).len(), 1, "a's file goes with a");
    assert_eq!(deleted(&collector), [pa.clone()].into());
    assert!(collector.is_valid(&pb).unwrap());
    drop(b);
    assert!(temp_root_files(&nix).is_empty());
    assert_eq!(deleted(&collector), [pb].into());
}

#[test]
fn a_stale_own_file_is_removed() {
    let nix = NixStore::new("");
    let s = open(&nix, TempRootsScope::Process);
    let p = text(&s, "p", "p");
    drop(s);
    // A file left by a dead process (no lock held), named as an `Own` file.
    let stale = nix.state_dir().join("temproots/4000001-3");
    std::fs::write(&stale, format!("{}/{p}\0", nix.store_path_dir().display())).unwrap();
    let collector = open(&nix, TempRootsScope::Process);
    assert!(collector.find_roots(false).unwrap().is_empty());
    assert!(!stale.exists());
    assert_eq!(deleted(&collector), [p].into());
}

/// Runs in the child: one collection (held at `_NIX_TEST_GC_SYNC_2` by the parent), printing
/// what it deleted.
fn child_collects(root: &Path) {
    let store = open_scoped(&root.join("store"), &root.join("state"), TempRootsScope::Process);
    for path in deleted(&store) {
        println!("{path}");
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// Waits until the child opens the FIFO for reading (it is then held at the sync point);
/// returns the FIFO opened for writing.
fn wait_for_reader(fifo: &Path, child: &mut Child) -> std::fs::File {
    for _ in 0..6000 {
        match std::fs::OpenOptions::new().write(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(fifo) {
            Ok(file) => return file,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {}
            Err(e) => panic!("opening the FIFO: {e}"),
        }
        assert!(child.try_wait().unwrap().is_none(), "the collector ended before its sync point");
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the collector never reached its sync point");
}

/// Waits for `child` (bounded: a hang is a failure, not a test that never ends).
fn wait_bounded(mut child: Child, what: &str) -> std::process::Output {
    for _ in 0..12000 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    panic!("{what} is blocked");
}

#[test]
fn roots_sent_during_a_collection_are_kept() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        child_collects(Path::new(&root));
        return;
    }
    let nix = NixStore::new("");
    let setup = open(&nix, TempRootsScope::Own);
    let control = text(&setup, "control", "dead, deleted");
    let victim = text(&setup, "victim", "dead when the collection starts, rooted during it");
    drop(setup);
    let fifo = nix.root.path().join("sync2");
    mkfifo(&fifo);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["roots_sent_during_a_collection_are_kept", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, nix.root.path())
        .env("_NIX_TEST_GC_SYNC_2", &fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut release = wait_for_reader(&fifo, &mut child);
    let socket = nix.state_dir().join("gc-socket/socket");
    assert!(socket.exists(), "the collector serves its socket");

    // Nix's protocol by hand: garbage is acknowledged too.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(b"not a store path\n").unwrap();
    let mut ack = [0u8; 1];
    raw.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"1");
    drop(raw);

    // A session (as a daemon connection) roots an old path and adds a new one.
    let session = open(&nix, TempRootsScope::Own);
    session.add_temp_root(&victim).unwrap();
    let fresh = text(&session, "fresh", "added during the collection");
    // Nix 2.8 adds a path: it must not wait for the collection to end.
    let src = nix.root.path().join("from-nix");
    std::fs::write(&src, "added by Nix during the collection").unwrap();
    let nix_add = nix.cmd("nix-store").args(["--add"]).arg(&src).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = wait_bounded(nix_add, "nix-store --add during our collection");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_nix = nix.store_dir().parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();

    release.write_all(b"go").unwrap();
    drop(release);
    let out = wait_bounded(child, "the collector");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gone: BTreeSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert!(gone.contains(&control.to_string()), "{gone:?}");
    for kept in [&victim, &fresh, &from_nix] {
        assert!(!gone.contains(&kept.to_string()), "{kept} was deleted: {gone:?}");
        assert!(session.is_valid(kept).unwrap(), "{kept}");
        assert!(session.real_path(kept).exists(), "{kept}");
    }
    assert!(!socket.exists(), "the socket goes with the collection");
    // With the session gone, its roots are gone too.
    drop(session);
    let collector = open(&nix, TempRootsScope::Process);
    assert_eq!(deleted(&collector), [victim, fresh, from_nix].into());
}
