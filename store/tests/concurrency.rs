//! Several writers at once on one database: our own handles in several threads (each its own
//! connection, as separate processes would have) registering overlapping batches, while Nix
//! processes add paths to the same database. Nothing fails with "busy", and the result is the
//! union of all writes.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::process::Child;

use common::NixStore;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};
use store::db::{Db, OpenMode};

const THREADS: usize = 4;
const BATCHES: usize = 40;
const NIX_PROCESSES: usize = 3;

fn chain_path(sd: &StoreDir, i: usize) -> StorePath {
    sd.make_store_path("output:out", &Hash::of(Algorithm::Sha256, format!("chain-{i}").as_bytes()), &format!("chain-{i}"))
        .unwrap()
}

fn chain_info(sd: &StoreDir, i: usize) -> ValidPathInfo {
    let path = chain_path(sd, i);
    let mut info = ValidPathInfo::new(path.clone(), Hash::of(Algorithm::Sha256, path.to_string().as_bytes()));
    info.nar_size = 100 + i as u64;
    // Each path refers to itself and to its predecessor.
    info.references.insert(path);
    if i > 0 {
        info.references.insert(chain_path(sd, i - 1));
    }
    info
}

/// Thread `t` registers batch `b` as paths [b, b + t + 1]: the batches of different threads
/// overlap, and each batch needs everything below it, which is in the same batch or registered
/// before by this thread.
fn writer(nix: &NixStore, t: usize) {
    let db = nix.open_db(OpenMode::ReadWrite);
    let sd = nix.store_dir();
    for b in 0..BATCHES {
        let start = b.saturating_sub(1);
        let infos: Vec<ValidPathInfo> = (start..=b + t + 1).rev().map(|i| chain_info(&sd, i)).collect();
        db.register_valid_paths(&infos, &Default::default()).unwrap();
        // Reads in between writes of others.
        assert!(db.is_valid(&chain_path(&sd, b)).unwrap());
        let refs = db.query_references(&chain_path(&sd, b + 1)).unwrap();
        assert!(refs.contains(&chain_path(&sd, b)));
    }
}

#[test]
fn concurrent_writers_do_not_fail_and_agree() {
    let nix = NixStore::new("");
    // Create the database first, as casnix's daemon would be running already.
    drop(nix.open_db(OpenMode::ReadWrite));
    // Nix 2.8 creates its state layout (`gcroots/profiles`) on first use without tolerating a
    // concurrent creator ("File exists"): let one Nix process create it before three race.
    nix.run("nix-store", &["--gc", "--print-roots"]);

    let files: Vec<Vec<String>> = (0..NIX_PROCESSES)
        .map(|p| {
            (0..8)
                .map(|i| {
                    let f = nix.root.path().join(format!("nix-{p}-{i}.txt"));
                    std::fs::write(&f, format!("added by Nix process {p}, file {i}")).unwrap();
                    f.to_str().unwrap().to_owned()
                })
                .collect()
        })
        .collect();
    let children: Vec<Child> = files
        .iter()
        .map(|fs| nix.cmd("nix-store").arg("--add").args(fs).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap())
        .collect();

    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let nix = &nix;
            scope.spawn(move || writer(nix, t));
        }
    });

    let mut nix_paths = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nix-store --add failed: {}", String::from_utf8_lossy(&out.stderr));
        nix_paths.extend(String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned));
    }
    assert_eq!(nix_paths.len(), NIX_PROCESSES * 8);

    let db: Db = nix.open_db(OpenMode::ReadOnly);
    let sd = nix.store_dir();
    let top = BATCHES + THREADS;
    let all = db.query_all_valid_paths().unwrap();
    assert_eq!(all.len(), top + nix_paths.len());
    for p in &nix_paths {
        assert!(all.contains(&sd.parse(p).unwrap()), "{p}");
    }
    for i in 0..top {
        let info = db.query_path_info(&chain_path(&sd, i)).unwrap().unwrap();
        let mut expected = chain_info(&sd, i);
        expected.registration_time = info.registration_time;
        assert_eq!(info, expected);
    }
    let closure = db.closure([&chain_path(&sd, top - 1)], Default::default()).unwrap();
    assert_eq!(closure.len(), top);

    // Nix sees everything we registered.
    let last = sd.print(&chain_path(&sd, top - 1));
    assert_eq!(nix.query("--requisites", &last).len(), top);
}

const CHILD_ENV: &str = "CASNIX_STOREDB_KILLED_WRITER_STATE";
const KILL_BATCH: usize = 500;

/// Batch `b` of the killed writer: paths `b*KILL_BATCH ..`, each referring to the previous one.
fn kill_batch(sd: &StoreDir, b: usize) -> Vec<ValidPathInfo> {
    (b * KILL_BATCH..(b + 1) * KILL_BATCH).map(|i| chain_info(sd, i)).collect()
}

/// Run as a child process (by the test below): registers batches until killed (or for at most
/// 200 batches, should the parent have gone).
fn killed_writer_child(state: &str, store: &str) {
    let sd = StoreDir::new(store);
    let db = Db::open(std::path::Path::new(state), sd.clone(), OpenMode::ReadWrite).unwrap();
    for b in 0..200 {
        db.register_valid_paths(&kill_batch(&sd, b), &Default::default()).unwrap();
    }
}

#[test]
fn a_killed_writer_leaves_whole_batches() {
    if let Ok(state) = std::env::var(CHILD_ENV) {
        let store = std::env::var("NIX_STORE_DIR").unwrap();
        killed_writer_child(&state, &store);
        return;
    }
    let nix = NixStore::new("");
    drop(nix.open_db(OpenMode::ReadWrite));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_writer_leaves_whole_batches", "--test-threads", "1"])
        .env(CHILD_ENV, nix.state_dir())
        .env("NIX_STORE_DIR", nix.store_path_dir())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has committed something, most likely in the middle of a transaction.
    let db = nix.open_db(OpenMode::ReadOnly);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.query_all_valid_paths().unwrap().len() < 2 * KILL_BATCH && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(37));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(db);

    let db = nix.open_db(OpenMode::ReadWrite);
    let sd = nix.store_dir();
    let valid = db.query_all_valid_paths().unwrap();
    assert!(valid.len() >= 2 * KILL_BATCH, "the child should have committed two batches");
    assert_eq!(valid.len() % KILL_BATCH, 0, "only whole batches may be valid: {}", valid.len());
    let batches = valid.len() / KILL_BATCH;
    for b in 0..batches {
        for info in kill_batch(&sd, b) {
            let mut stored = db.query_path_info(&info.path).unwrap().unwrap();
            stored.registration_time = 0;
            assert_eq!(stored, info);
        }
    }
    let check: String = rusqlite::Connection::open(db.nix_db_path())
        .unwrap()
        .query_row("pragma integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // Nix agrees.
    let last = sd.print(&chain_path(&sd, batches * KILL_BATCH - 1));
    assert_eq!(nix.query("--requisites", &last).len(), batches * KILL_BATCH);
}
