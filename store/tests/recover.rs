//! `Store::recover` cleans up after dead processes (leftovers of interrupted adds whose lock is
//! free, castore roots Nix's database does not back) while `Store::open` stays cheap; the
//! figures for a store of a few thousand paths are printed (not asserted).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use castore::Durability;
use nix_formats::hash::{Algorithm, Hash};
use store::local::{NarToAdd, PathLock};
use store::{Store, StoreConfig, TempRootsScope};

const PATHS: usize = 3000;

fn config(root: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"));
    config.durability = Durability::Unsynced;
    config.temp_roots = TempRootsScope::Own;
    config
}

/// Adds `PATHS` small text-addressed paths in batches (one transaction each).
fn populate(store: &Store) {
    let sd = store.store_dir().clone();
    let dir = tempfile::tempdir().unwrap();
    for batch in 0..PATHS / 500 {
        let mut items = Vec::new();
        for i in 0..500 {
            let body = format!("path {batch}-{i}");
            let file = dir.path().join(format!("{batch}-{i}"));
            std::fs::write(&file, &body).unwrap();
            let mut nar = Vec::new();
            nix_formats::nar::dump_path(&file, &mut nar).unwrap();
            let hash = Hash::of(Algorithm::Sha256, body.as_bytes());
            let path = sd.make_text_path(&format!("p{batch}-{i}"), &hash, []).unwrap();
            let mut info = nix_formats::path_info::ValidPathInfo::new(path, Hash::of(Algorithm::Sha256, &nar));
            info.nar_size = nar.len() as u64;
            info.ca = Some(nix_formats::content_address::ContentAddress {
                method: nix_formats::content_address::Method::Text,
                hash,
            });
            items.push((info, nar));
        }
        let batch: Vec<NarToAdd<&[u8]>> = items.iter().map(|(info, nar)| NarToAdd { info: info.clone(), nar: &nar[..] }).collect();
        store.add_nars(batch, false).unwrap();
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn recover_cleans_up_and_open_stays_cheap() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(&config(root.path())).unwrap();
    populate(&store);
    assert_eq!(store.query_all_valid_paths().unwrap().len(), PATHS);

    // What dead processes leave: an unregistered tree with its temporary twin and lock file,
    // a castore root for a path never registered; and what a live add holds.
    let sd = store.store_dir().clone();
    let ghost = sd.make_text_path("ghost", &Hash::of(Algorithm::Sha256, b"g"), []).unwrap();
    let busy = sd.make_text_path("busy", &Hash::of(Algorithm::Sha256, b"b"), []).unwrap();
    let dir = store.real_store_dir().to_path_buf();
    std::fs::write(dir.join(ghost.to_string()), "renamed in, never registered").unwrap();
    std::fs::create_dir(dir.join(format!("{ghost}.tmp-1-0"))).unwrap();
    std::fs::write(dir.join(format!("{ghost}.lock")), "").unwrap();
    std::fs::write(dir.join(format!("{busy}.tmp-2-0")), "being written").unwrap();
    store.db().set_castore_root(&ghost, &Hash::of(Algorithm::Sha256, b"nar"), b"root").unwrap();
    let held = PathLock::acquire(&store.real_path(&busy)).unwrap();

    let opens: Vec<Duration> = (0..30)
        .map(|_| {
            let start = Instant::now();
            let s = Store::open(&config(root.path())).unwrap();
            let took = start.elapsed();
            drop(s);
            took
        })
        .collect();
    assert!(dir.join(ghost.to_string()).exists(), "opening touches nothing");

    let start = Instant::now();
    let recovered = store.recover().unwrap();
    let recover_took = start.elapsed();
    assert_eq!(recovered.leftovers, [ghost.to_string(), format!("{ghost}.tmp-1-0"), format!("{ghost}.lock")].into());
    assert_eq!(recovered.castore_roots, 1);
    assert!(dir.join(format!("{busy}.tmp-2-0")).exists(), "a held lock keeps its leftovers");
    drop(held);
    let again = store.recover().unwrap();
    // (The lock file went with the lock.)
    assert_eq!(again.leftovers, [format!("{busy}.tmp-2-0")].into_iter().collect::<BTreeSet<_>>());
    assert_eq!(again.castore_roots, 0);
    assert!(store.verify_store(false, false).unwrap().problems.is_empty());

    println!(
        "store of {PATHS} paths: Store::open median {:?} (of 30), Store::recover {:?}",
        median(opens),
        recover_took
    );
}
