//! Blob services: immutable byte strings addressed by their BLAKE3 digest.
//!
//! [`BlobService`] is the interface; [`LocalBlobService`] keeps blobs as files in a local pool,
//! which the store hardlinks into the store directory (see [`local`]).

mod anonymous;
mod direct;
pub mod local;

use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;

use crate::digest::B3Digest;

pub use local::{LocalBlobService, SweepStats};

/// Errors of blob services.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A file system operation on the pool failed.
    #[error("blob pool: {}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The blob is not in the service.
    #[error("blob {0} not found")]
    NotFound(B3Digest),
    /// A blob's stored size differs from what was expected (the pool was tampered with).
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The blob.
        digest: B3Digest,
        /// The size recorded in the tree.
        expected: u64,
        /// The size found.
        actual: u64,
    },
}

impl BlobError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// A readable, seekable blob.
pub trait BlobReader: Read + Seek + Send {}

impl<T: Read + Seek + Send> BlobReader for T {}

/// Receives a blob's bytes; [`finish`](Self::finish) names it.
///
/// Dropping a writer without finishing it discards what was written.
pub trait BlobWriter: Write + Send {
    /// Ends the blob and returns its digest and size. The blob is durable and readable once the
    /// service's [`flush`](BlobService::flush) has returned (a service may make it so sooner).
    fn finish(self: Box<Self>) -> Result<(B3Digest, u64), BlobError>;
}

/// Stores and serves blobs. Blobs are immutable; writing one that exists already is cheap and
/// harmless. Implementations are safe to share between threads, and concurrent writers of the
/// same contents end with one stored blob.
pub trait BlobService: Send + Sync {
    /// Whether the blob is stored (and flushed).
    fn has(&self, digest: &B3Digest) -> Result<bool, BlobError>;

    /// The blob's size, or `None` if it is not stored.
    fn size(&self, digest: &B3Digest) -> Result<Option<u64>, BlobError>;

    /// Opens the blob for reading, or `None` if it is not stored (the local pool also opens
    /// blobs written but not flushed yet).
    fn open_read(&self, digest: &B3Digest) -> Result<Option<Box<dyn BlobReader>>, BlobError>;

    /// A writer for a new blob.
    fn writer(&self) -> Result<Box<dyn BlobWriter>, BlobError>;

    /// A writer for a new blob that will be materialised as an executable file. Services that
    /// keep separate executable copies (see [`LocalBlobService`]) create that one first; the
    /// digest is the same either way.
    fn executable_writer(&self) -> Result<Box<dyn BlobWriter>, BlobError> {
        self.writer()
    }

    /// Makes every blob finished before this call durable (on stable storage) and readable.
    fn flush(&self) -> Result<(), BlobError>;

    /// Where the local file of [`path_for_link`](Self::path_for_link) usually is, found without
    /// touching the file system: callers may try to link it first and fall back to
    /// `path_for_link` when it is missing (saving a lookup per file). `None` by default.
    fn link_path_hint(&self, digest: &B3Digest, executable: bool) -> Option<PathBuf> {
        let _ = (digest, executable);
        None
    }

    /// A local file holding the blob with the given mode (`0444`, or `0555` when `executable`)
    /// and mtime 1, that may be hardlinked elsewhere; `None` if this service has no local files.
    fn path_for_link(&self, digest: &B3Digest, executable: bool) -> Result<Option<PathBuf>, BlobError> {
        let _ = (digest, executable);
        Ok(None)
    }

    /// Stores `data` as a blob, like a writer that receives it all at once (the blob is visible
    /// after the next [`flush`](Self::flush)); returns its digest and size. `executable` is the
    /// hint of [`executable_writer`](Self::executable_writer).
    fn write_bytes(&self, data: &[u8], executable: bool) -> Result<(B3Digest, u64), BlobError> {
        let mut writer = if executable { self.executable_writer()? } else { self.writer()? };
        writer.write_all(data).map_err(|e| BlobError::io("<blob writer>", e))?;
        writer.finish()
    }

    /// Stores `data` as a blob, flushed, and returns its digest.
    fn put(&self, data: &[u8]) -> Result<B3Digest, BlobError> {
        let mut writer = self.writer()?;
        writer.write_all(data).map_err(|e| BlobError::io("<blob writer>", e))?;
        let (digest, _) = writer.finish()?;
        self.flush()?;
        Ok(digest)
    }
}
