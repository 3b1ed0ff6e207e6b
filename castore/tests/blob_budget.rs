//! The pool's budget of unnamed temporary files: when waiting blobs hold every descriptor of
//! it, the pool flushes them early instead of falling back to named temporary files. A test
//! binary of its own, because the budget comes from the process's descriptor limit, read once.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::fs;
use std::path::Path;

use castore::{B3Digest, BlobService, Durability, LocalBlobService};

/// Names in the pool's fan-out directories: (final names, temporary names).
fn pool_names(root: &Path) -> (usize, usize) {
    let (mut finals, mut temps) = (0, 0);
    for dir in fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.file_name().unwrap() == "tmp" || !dir.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&dir).unwrap() {
            if entry.unwrap().file_name().to_string_lossy().starts_with(".tmp-") {
                temps += 1;
            } else {
                finals += 1;
            }
        }
    }
    (finals, temps)
}

#[test]
fn a_spent_budget_flushes_waiting_blobs_instead_of_naming_temporaries() {
    // 1024 descriptors are kept in reserve and half the rest is the budget: 32 unnamed files.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let soft = 1024 + 64;
    if limit.maximum.is_some_and(|hard| hard < soft) {
        eprintln!("descriptor limit below {soft}: skipped");
        return;
    }
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit { current: Some(soft), maximum: limit.maximum },
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pool");
    let blobs = LocalBlobService::open_with(&root, Durability::Synced).unwrap();
    let contents: Vec<Vec<u8>> = (0..200u32).map(|i| format!("blob number {i}").into_bytes()).collect();
    let digests: Vec<B3Digest> = contents.iter().map(|c| blobs.write_bytes(c, false).unwrap().0).collect();

    let (finals, temps) = pool_names(&root);
    if finals == 0 {
        // No O_TMPFILE on this file system: every blob waits under a temporary name.
        assert_eq!(temps, 200);
        return;
    }
    // Every time the 32 descriptors were spent the waiting blobs were flushed: at most 32 wait
    // now (unnamed), the others have their names, and no temporary name was made.
    assert_eq!(temps, 0, "blobs fell back to named temporary files");
    assert!(finals >= 200 - 32, "only {finals} blobs were flushed early");
    blobs.flush().unwrap();
    assert_eq!(pool_names(&root), (200, 0));
    for (digest, content) in digests.iter().zip(&contents) {
        assert_eq!(fs::read(blobs.pool_path(digest, false)).unwrap(), *content);
    }
}
