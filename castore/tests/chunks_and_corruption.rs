//! The chunk index through a castore, and rendering from a damaged pool.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use castore::{BlobError, Castore, CastoreConfig, ChunkIndex, Node, RenderError};

#[test]
fn large_blobs_are_chunked_on_ingest_or_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir(&source).unwrap();
    let big = common::noise(3 * 1024 * 1024 + 17, 11);
    let other = common::noise(2 * 1024 * 1024, 12);
    fs::write(source.join("big"), &big).unwrap();
    fs::write(source.join("small"), b"tiny").unwrap();
    let mut config = CastoreConfig::new(tmp.path().join("castore"));
    config.index_chunks_on_ingest = true;
    let store = Castore::open_with(config).unwrap();
    let root = store.ingest_path(&source).unwrap().root;
    let Node::Directory { digest, size } = root else { panic!("not a directory") };
    let dir = castore::DirectoryService::get(store.directories(), &digest).unwrap().unwrap();
    assert_eq!(dir.size(), size);
    let Some(Node::File { digest: big_digest, .. }) = dir.get(b"big") else { panic!("no big file") };
    let Some(Node::File { digest: small_digest, .. }) = dir.get(b"small") else { panic!("no small file") };

    let chunks = store.chunk_index().get(big_digest).unwrap().expect("indexed on ingest");
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    let mut offset = 0;
    for chunk in &chunks {
        assert_eq!(chunk.offset, offset);
        let end = offset as usize + chunk.length as usize;
        assert_eq!(chunk.digest, castore::B3Digest::of(&big[offset as usize..end]));
        offset += u64::from(chunk.length);
    }
    assert_eq!(offset, big.len() as u64);
    assert_eq!(store.chunk_index().get(small_digest).unwrap(), None, "small blobs are not indexed");

    // A blob stored without indexing is chunked (and recorded) when first asked for.
    let other_digest = castore::BlobService::put(store.blobs(), &other).unwrap();
    assert_eq!(store.chunk_index().get(&other_digest).unwrap(), None);
    let computed = store.chunk_index().chunks(&other_digest, store.blobs()).unwrap();
    assert_eq!(store.chunk_index().get(&other_digest).unwrap(), Some(computed));
}

#[test]
fn rendering_refuses_blobs_of_the_wrong_size() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir(&source).unwrap();
    fs::write(source.join("a"), common::noise(300_000, 1)).unwrap();
    fs::write(source.join("b"), b"short file").unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let root = store.ingest_path(&source).unwrap().root;
    let digest = castore::B3Digest::of(b"short file");
    let pool_file = store.blobs().pool_path(&digest, false);
    fs::set_permissions(&pool_file, fs::Permissions::from_mode(0o644)).unwrap();
    for damaged in [&b"short"[..], b"short file, longer now"] {
        fs::write(&pool_file, damaged).unwrap();
        match store.render_nar(&root, Vec::new()) {
            Err(RenderError::Blob(BlobError::SizeMismatch { digest: d, expected: 10, .. })) => assert_eq!(d, digest),
            other => panic!("{other:?}"),
        }
    }
    fs::remove_file(&pool_file).unwrap();
    assert!(matches!(store.render_nar(&root, Vec::new()), Err(RenderError::Blob(BlobError::NotFound(_)))));
}
