//! A collector running again and again while eight processes (in waves, so that paths of
//! exited processes become garbage) add overlapping paths: no errors, nothing rooted or
//! temp-rooted deleted, every store file linked from the pool (nothing stored twice).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use castore::Durability;
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use store::gc::{GcAction, GcOptions};
use store::{Store, StoreConfig};

const WORKERS: usize = 8;
const WAVES: usize = 3;
const TREES: usize = 6;
const CHILD_ENV: &str = "CASNIX_GC_CHILD";

fn open(root: &Path) -> Store {
    let mut config = StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"));
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

fn make_sources(root: &Path) {
    for k in 0..TREES {
        let src = root.join(format!("src/t{k}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("common"), "in every tree").unwrap();
        std::fs::write(src.join("own"), format!("tree {k}")).unwrap();
    }
}

/// One process's adds; every path it added (temp-rooted by it) must stay whole while it runs.
fn work(root: &Path, w: usize) {
    let store = open(root);
    let mut mine = Vec::new();
    for i in 0..TREES {
        let k = (i + w) % TREES;
        let tree = store.add_path(&root.join(format!("src/t{k}")), &format!("t{k}"), Method::Nar, Algorithm::Sha256).unwrap().path;
        let text = store.add_text(&format!("x{k}"), store.print(&tree).as_bytes(), &[tree.clone()].into()).unwrap().path;
        mine.push((tree, k));
        for (path, k) in &mine {
            assert!(store.is_valid(path).unwrap(), "{path} was deleted while temp-rooted");
            let own = std::fs::read_to_string(store.real_path(path).join("own")).unwrap();
            assert_eq!(own, format!("tree {k}"));
        }
        assert!(store.is_valid(&text).unwrap());
    }
}

fn spawn(root: &Path, w: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["collector_runs_while_processes_add", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, root)
        .env("CASNIX_WORKER", w.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn store_files(dir: &Path, out: &mut Vec<std::fs::Metadata>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            store_files(&entry.path(), out);
        } else if meta.is_file() {
            out.push(meta);
        }
    }
}

#[test]
fn collector_runs_while_processes_add() {
    if let (Some(root), Ok(w)) = (std::env::var_os(CHILD_ENV), std::env::var("CASNIX_WORKER")) {
        work(Path::new(&root), w.parse().unwrap());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_sources(root);
    let store = open(root);
    let rooted = store.add_text("rooted", b"kept by a permanent root", &BTreeSet::new()).unwrap().path;
    std::os::unix::fs::symlink(store.print(&rooted), root.join("state/gcroots/r")).unwrap();
    drop(store);
    let collector = open(root);
    // Each worker slot: its current process (none once its last wave is over) and waves so far.
    let mut slots: Vec<(Option<Child>, usize)> = (0..WORKERS).map(|w| (Some(spawn(root, w)), 1)).collect();
    let mut collections = 0;
    let mut deleted = 0;
    loop {
        let result = collector.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap();
        collections += 1;
        deleted += result.paths.len();
        assert!(!result.paths.contains(&rooted));
        let mut running = 0;
        for (w, (slot, waves)) in slots.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            match child.try_wait().unwrap() {
                None => running += 1,
                Some(status) => {
                    let mut err = String::new();
                    use std::io::Read;
                    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    assert!(status.success(), "worker {w}: {err}");
                    if *waves < WAVES {
                        *slot = Some(spawn(root, w + *waves));
                        *waves += 1;
                        running += 1;
                    } else {
                        *slot = None;
                    }
                }
            }
        }
        if running == 0 {
            break;
        }
        // Adds that find the collector running send their roots to its `gc-socket` and go on;
        // the pause only lets the workers make progress between collections.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(collections > 1);
    assert!(collector.is_valid(&rooted).unwrap());
    // Every file of every valid path is a link into the pool.
    let valid = collector.query_all_valid_paths().unwrap();
    for path in &valid {
        let mut files = Vec::new();
        let real = collector.real_path(path);
        let meta = std::fs::symlink_metadata(&real).unwrap();
        if meta.is_dir() {
            store_files(&real, &mut files);
        } else {
            files.push(meta);
        }
        assert!(files.iter().all(|m| m.nlink() >= 2), "{path} has a file not in the pool");
    }
    // Now that every worker is gone, all but the root is garbage.
    let last = collector.collect_garbage(&GcOptions::new(GcAction::DeleteDead)).unwrap();
    assert_eq!(collector.query_all_valid_paths().unwrap(), [rooted].into());
    assert!(deleted + last.paths.len() >= 2 * TREES);
}
