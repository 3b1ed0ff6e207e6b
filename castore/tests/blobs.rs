//! The local blob pool: layout, visibility, deduplication, concurrency, executables, deletion.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use castore::{B3Digest, BlobService, LocalBlobService};

fn write_blob(blobs: &dyn BlobService, data: &[u8], executable: bool) -> B3Digest {
    let mut writer = if executable { blobs.executable_writer().unwrap() } else { blobs.writer().unwrap() };
    // Several writes, to exercise the spill from memory to a file.
    for piece in data.chunks(300_000) {
        writer.write_all(piece).unwrap();
    }
    let (digest, size) = writer.finish().unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(digest, B3Digest::of(data));
    digest
}

fn read_blob(blobs: &dyn BlobService, digest: &B3Digest) -> Vec<u8> {
    let mut out = Vec::new();
    blobs.open_read(digest).unwrap().unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Pool files (not directories), recursively.
fn pool_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(pool_files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn blobs_appear_on_flush_with_canonical_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobService::open(dir.path().join("pool")).unwrap();
    for data in [&b""[..], b"small", &common::noise(3_000_000, 9)] {
        let digest = write_blob(&blobs, data, false);
        assert!(!blobs.has(&digest).unwrap(), "visible before flush");
        blobs.flush().unwrap();
        assert!(blobs.has(&digest).unwrap());
        assert_eq!(blobs.size(&digest).unwrap(), Some(data.len() as u64));
        assert_eq!(read_blob(&blobs, &digest), data);
        let path = blobs.pool_path(&digest, false);
        let hex = digest.to_hex();
        assert_eq!(path, dir.path().join("pool").join(&hex[..2]).join(&hex));
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o444);
        assert_eq!(meta.mtime(), 1);
        assert!(blobs.verify(&digest).unwrap());
    }
    let missing = B3Digest::of(b"never written");
    assert!(!blobs.has(&missing).unwrap());
    assert_eq!(blobs.size(&missing).unwrap(), None);
    assert!(blobs.open_read(&missing).unwrap().is_none());
    assert!(fs::read_dir(dir.path().join("pool/tmp")).unwrap().next().is_none(), "temporary files left");
}

#[test]
fn rewriting_a_blob_writes_nothing_and_unfinished_writers_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobService::open(dir.path()).unwrap();
    let data = common::noise(2_500_000, 3);
    let digest = blobs.put(&data).unwrap();
    let inode = fs::metadata(blobs.pool_path(&digest, false)).unwrap().ino();
    assert_eq!(blobs.put(&data).unwrap(), digest);
    assert_eq!(fs::metadata(blobs.pool_path(&digest, false)).unwrap().ino(), inode, "blob replaced");
    let mut writer = blobs.writer().unwrap();
    writer.write_all(&data).unwrap();
    drop(writer);
    blobs.flush().unwrap();
    assert_eq!(pool_files(dir.path()).len(), 1);
}

#[test]
fn concurrent_writers_of_the_same_blobs_end_with_one_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let contents: Vec<Vec<u8>> =
        (0..12).map(|i| common::noise(if i % 4 == 0 { 1_500_000 } else { 1000 * i }, i as u64)).collect();
    let shared = LocalBlobService::open(dir.path()).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let contents = &contents;
            let root = dir.path().to_path_buf();
            let shared = shared.clone();
            scope.spawn(move || {
                // Half the threads share one service, the others have their own (like processes).
                let blobs = if thread % 2 == 0 { shared } else { LocalBlobService::open(&root).unwrap() };
                for round in 0..3 {
                    for (i, data) in contents.iter().enumerate() {
                        write_blob(&blobs, data, (i + thread + round) % 3 == 0);
                    }
                    blobs.flush().unwrap();
                    for data in contents {
                        assert!(blobs.has(&B3Digest::of(data)).unwrap());
                    }
                }
            });
        }
    });
    let blobs = LocalBlobService::open(dir.path()).unwrap();
    let files = pool_files(dir.path());
    // Each blob has one or two variants, and no temporary file is left.
    assert!(files.len() >= contents.len() && files.len() <= 2 * contents.len(), "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with(dir.path().join("tmp"))));
    for data in &contents {
        let digest = B3Digest::of(data);
        assert_eq!(read_blob(&blobs, &digest), *data);
        assert!(blobs.verify(&digest).unwrap());
    }
}

#[test]
fn executable_variant_is_its_own_inode() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobService::open(dir.path()).unwrap();
    let digest = write_blob(&blobs, b"#!/bin/sh\n", true);
    blobs.flush().unwrap();
    // Written as an executable: only the `.x` variant exists.
    let exec = blobs.path_for_link(&digest, true).unwrap().unwrap();
    assert_eq!(exec, blobs.pool_path(&digest, true));
    assert!(exec.to_string_lossy().ends_with(".x"));
    assert!(!blobs.pool_path(&digest, false).exists());
    assert!(blobs.has(&digest).unwrap());
    assert_eq!(read_blob(&blobs, &digest), b"#!/bin/sh\n");
    // The plain variant is made on demand, as another inode.
    let plain = blobs.path_for_link(&digest, false).unwrap().unwrap();
    let (p, x) = (fs::metadata(&plain).unwrap(), fs::metadata(&exec).unwrap());
    assert_ne!(p.ino(), x.ino());
    assert_eq!((p.mode() & 0o7777, x.mode() & 0o7777), (0o444, 0o555));
    assert_eq!((p.mtime(), x.mtime()), (1, 1));
    assert_eq!(fs::read(&plain).unwrap(), b"#!/bin/sh\n");
    assert!(blobs.verify(&digest).unwrap());
    assert!(matches!(blobs.path_for_link(&B3Digest::of(b"nope"), true), Err(castore::BlobError::NotFound(_))));
}

#[test]
fn unused_blobs_are_removed_used_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobService::open(dir.path().join("pool")).unwrap();
    let used = blobs.put(b"used").unwrap();
    let unused = blobs.put(b"unused").unwrap();
    let link = dir.path().join("link");
    fs::hard_link(blobs.path_for_link(&used, false).unwrap().unwrap(), &link).unwrap();
    assert!(!blobs.remove_if_unused(&used).unwrap());
    assert!(blobs.has(&used).unwrap());
    assert!(blobs.remove_if_unused(&unused).unwrap());
    assert!(!blobs.has(&unused).unwrap());
    // A variant made for linking, then unlinked, is swept; the linked one stays.
    blobs.path_for_link(&used, true).unwrap();
    let stats = blobs.sweep_unused().unwrap();
    assert_eq!((stats.files, stats.bytes), (1, 4));
    assert!(blobs.has(&used).unwrap());
    fs::remove_file(&link).unwrap();
    assert_eq!(blobs.sweep_unused().unwrap().files, 1);
    assert!(!blobs.has(&used).unwrap());
}

#[test]
fn verify_detects_changed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobService::open(dir.path()).unwrap();
    let digest = blobs.put(b"original").unwrap();
    let path = blobs.pool_path(&digest, false);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"tampered").unwrap();
    assert!(!blobs.verify(&digest).unwrap());
}
