//! NAR ingest: hash and size in one pass, exact consumption, refusal of bad archives.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::io::Read;

use castore::{Castore, IngestError, IngestLimits, SqliteDirectoryService};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::nar::Writer;

fn sample_nar() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    w.start_directory().unwrap();
    w.entry(b"a").unwrap();
    w.start_directory().unwrap();
    w.entry(b"f").unwrap();
    w.regular_bytes(false, &common::noise(70_000, 1)).unwrap();
    w.end_directory().unwrap();
    w.entry(b"b").unwrap();
    w.regular_bytes(true, b"#!/bin/sh\n").unwrap();
    w.entry(b"c").unwrap();
    w.symlink(b"a/f").unwrap();
    w.end_directory().unwrap();
    w.finish().unwrap()
}

#[test]
fn reads_exactly_the_archive_and_hashes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Castore::open(dir.path()).unwrap();
    let nar = sample_nar();
    let mut input = nar.clone();
    input.extend_from_slice(b"trailing protocol bytes");
    let mut cursor = &input[..];
    let result = store.ingest_nar(&mut cursor).unwrap();
    assert_eq!(result.nar_size, nar.len() as u64);
    assert_eq!(result.nar_hash, Hash::of(Algorithm::Sha256, &nar));
    let mut rest = Vec::new();
    cursor.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"trailing protocol bytes");
    assert_eq!(store.render_nar(&result.root, Vec::new()).unwrap(), nar);
    assert_eq!(store.nar_hash(&result.root).unwrap(), (result.nar_hash, result.nar_size));
}

#[test]
fn truncated_archives_are_refused_and_store_no_directory() {
    let nar = sample_nar();
    let dir = tempfile::tempdir().unwrap();
    let store = Castore::open(dir.path()).unwrap();
    for cut in (0..nar.len()).step_by(997).chain(0..200).chain([nar.len() - 1]) {
        match store.ingest_nar(&nar[..cut]) {
            Err(castore::CastoreIngestError::Ingest(IngestError::Nar(e))) => assert!(e.is_truncated(), "cut {cut}: {e}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    assert_eq!(store.directories().count().unwrap(), 0);
}

#[test]
fn malformed_archives_are_refused() {
    let nar = sample_nar();
    let dir = tempfile::tempdir().unwrap();
    let store = Castore::open(dir.path()).unwrap();
    let mut bad_magic = nar.clone();
    bad_magic[8] = b'N';
    // Entries out of order: swap the names "a" and "b".
    let mut unsorted = nar.clone();
    let first_a = unsorted.windows(16).position(|w| w == b"\x01\0\0\0\0\0\0\0a\0\0\0\0\0\0\0").unwrap();
    let first_b = unsorted.windows(16).position(|w| w == b"\x01\0\0\0\0\0\0\0b\0\0\0\0\0\0\0").unwrap();
    unsorted[first_a + 8] = b'b';
    unsorted[first_b + 8] = b'a';
    let mut bad_padding = nar.clone();
    let target = bad_padding.windows(3).position(|w| w == b"a/f").unwrap();
    bad_padding[target + 4] = 1;
    for (what, input) in [("magic", bad_magic), ("order", unsorted), ("padding", bad_padding)] {
        match store.ingest_nar(&input[..]) {
            Err(castore::CastoreIngestError::Ingest(IngestError::Nar(e))) => assert!(e.is_malformed(), "{what}: {e}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(store.directories().count().unwrap(), 0);
}

#[test]
fn node_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = castore::LocalBlobService::open(dir.path()).unwrap();
    let directories = SqliteDirectoryService::in_memory().unwrap();
    let limits = IngestLimits { max_nodes: 3, ..IngestLimits::default() };
    let result = castore::ingest_nar(&sample_nar()[..], &limits, &blobs, &directories);
    assert!(matches!(result, Err(IngestError::TooManyNodes { max: 3 })), "{result:?}");
    let limits = IngestLimits { max_nodes: 5, ..IngestLimits::default() };
    castore::ingest_nar(&sample_nar()[..], &limits, &blobs, &directories).unwrap();
}
