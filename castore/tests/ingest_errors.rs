//! Ingest failures: unsupported files, failing blob services, and nothing stored on failure.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::io::{self, Write};
use std::path::PathBuf;

use castore::{B3Digest, BlobError, BlobReader, BlobService, BlobWriter, IngestError, IngestLimits, LocalBlobService, SqliteDirectoryService};

/// A blob service whose writers fail once they have received more than `limit` bytes.
struct Failing {
    inner: LocalBlobService,
    limit: usize,
}

struct FailingWriter {
    inner: Box<dyn BlobWriter>,
    left: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.left {
            return Err(io::Error::other("disk on fire"));
        }
        self.left -= buf.len();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for FailingWriter {
    fn finish(self: Box<Self>) -> Result<(B3Digest, u64), BlobError> {
        self.inner.finish()
    }
}

impl BlobService for Failing {
    fn has(&self, digest: &B3Digest) -> Result<bool, BlobError> {
        self.inner.has(digest)
    }
    fn size(&self, digest: &B3Digest) -> Result<Option<u64>, BlobError> {
        self.inner.size(digest)
    }
    fn open_read(&self, digest: &B3Digest) -> Result<Option<Box<dyn BlobReader>>, BlobError> {
        self.inner.open_read(digest)
    }
    fn writer(&self) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(FailingWriter { inner: self.inner.writer()?, left: self.limit }))
    }
    fn flush(&self) -> Result<(), BlobError> {
        self.inner.flush()
    }
}

fn tree_with_files(sizes: &[usize]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    std::fs::create_dir(&source).unwrap();
    for (i, size) in sizes.iter().enumerate() {
        std::fs::write(source.join(format!("f{i:03}")), common::noise(*size, i as u64)).unwrap();
    }
    (dir, source)
}

#[test]
fn a_failing_blob_service_fails_the_ingest_with_its_error() {
    // Many small files and a large (streamed) one, so the failure meets a busy pipeline.
    let mut sizes = vec![100; 200];
    sizes.push(5 << 20);
    let (dir, source) = tree_with_files(&sizes);
    let directories = SqliteDirectoryService::in_memory().unwrap();
    for limit in [50, 3 << 20] {
        let blobs = Failing { inner: LocalBlobService::open(dir.path().join("pool")).unwrap(), limit };
        let result = castore::ingest_path(&source, &IngestLimits::default(), &blobs, &directories);
        match result {
            Err(IngestError::Blob(BlobError::Io { source, .. })) => assert_eq!(source.to_string(), "disk on fire"),
            other => panic!("limit {limit}: {other:?}"),
        }
        let nar = common::dump(&source);
        let result = castore::ingest_nar(&nar[..], &IngestLimits::default(), &blobs, &directories);
        assert!(matches!(result, Err(IngestError::Blob(_))), "limit {limit}: {result:?}");
    }
    assert_eq!(directories.count().unwrap(), 0);
}

#[test]
fn unsupported_files_are_refused() {
    let (dir, source) = tree_with_files(&[10, 20]);
    let status = std::process::Command::new("mkfifo").arg(source.join("fifo")).status().unwrap();
    assert!(status.success());
    let store = castore::Castore::open(dir.path().join("castore")).unwrap();
    match store.ingest_path(&source) {
        Err(castore::CastoreIngestError::Ingest(IngestError::UnsupportedFileType { path, kind: "FIFO" })) => {
            assert_eq!(path, source.join("fifo"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.directories().count().unwrap(), 0);
    let missing = dir.path().join("missing");
    assert!(matches!(store.ingest_path(&missing), Err(castore::CastoreIngestError::Ingest(IngestError::Io { .. }))));
}

#[test]
fn depth_and_node_limits_apply_to_trees() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    std::fs::create_dir_all(source.join("a/b/c/d")).unwrap();
    let blobs = LocalBlobService::open(dir.path().join("pool")).unwrap();
    let directories = SqliteDirectoryService::in_memory().unwrap();
    let mut limits = IngestLimits::default();
    limits.nar.max_depth = 3;
    assert!(matches!(castore::ingest_path(&source, &limits, &blobs, &directories), Err(IngestError::TooDeep { max: 3, .. })));
    limits.nar.max_depth = 5;
    castore::ingest_path(&source, &limits, &blobs, &directories).unwrap();
    limits.max_nodes = 4;
    assert!(matches!(
        castore::ingest_path(&source, &limits, &blobs, &directories),
        Err(IngestError::TooManyNodes { max: 4 })
    ));
}
