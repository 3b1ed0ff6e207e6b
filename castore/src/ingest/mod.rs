//! Ingest: turning a file system tree or a NAR into blobs and directories, and a root [`Node`].
//!
//! Both ingests read the tree once, in NAR order, and compute the NAR's SHA-256 on the calling
//! thread (a file system tree is read on a thread of its own, `reader`); worker threads hash the file contents with BLAKE3 and write them to the blob
//! service meanwhile (see `pipeline`). The tree's shape is recorded as it is read, and its
//! directories are built bottom-up once the file digests are known; blobs are flushed (durable)
//! before the directories are stored, in one transaction. A failed ingest stores no directory; the blobs it wrote stay in the pool, unused
//! (harmless, and collectable).

mod fs;
mod nar;
mod pipeline;
mod reader;
mod tree;

use std::io;
use std::path::PathBuf;

use crate::blob::BlobError;
use crate::directory::DirectoryError;
use crate::directory_service::DirectoryServiceError;
use crate::node::InvalidSymlinkTarget;

pub use fs::ingest_path;
pub use nar::{ingest_nar, ingest_nar_staged, StagedNar};

use nix_formats::hash::Hash;

use crate::node::Node;

/// What an ingest produced: the tree's root node, and the SHA-256 and size of the tree's NAR
/// (Nix's "NAR hash" and "NAR size"), computed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The tree's root node.
    pub root: Node,
    /// The SHA-256 of the tree's NAR.
    pub nar_hash: Hash,
    /// The NAR's size in bytes.
    pub nar_size: u64,
}

/// Bounds on what one ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Limits of the NAR reader; its `max_depth` also bounds file system trees.
    pub nar: nix_formats::nar::Limits,
    /// The most nodes (files, symlinks, directories) one tree may have. Default 8 million, which
    /// bounds an ingest's memory to about a gigabyte.
    pub max_nodes: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self { nar: nix_formats::nar::Limits::default(), max_nodes: 8 << 20 }
    }
}

/// Errors of an ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the tree failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The tree holds a file that castore cannot represent (socket, FIFO, device).
    #[error("file '{}' has an unsupported type ({kind})", path.display())]
    UnsupportedFileType {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file changed (type or size) while it was being read.
    #[error("file '{}' changed while it was being ingested", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// Directories nest deeper than the limit.
    #[error("'{}' is nested deeper than {max} levels", path.display())]
    TooDeep {
        /// The first path too deep.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// The tree has more nodes than [`IngestLimits::max_nodes`].
    #[error("tree has more than {max} nodes")]
    TooManyNodes {
        /// The limit.
        max: u64,
    },
    /// A symlink's target cannot be stored (empty or too long).
    #[error("'{}': {source}", path.display())]
    InvalidSymlinkTarget {
        /// The symlink.
        path: PathBuf,
        /// The problem.
        #[source]
        source: InvalidSymlinkTarget,
    },
    /// A directory cannot be built (invalid or too many names).
    #[error(transparent)]
    InvalidDirectory(DirectoryError),
    /// The NAR is malformed, truncated, or could not be read.
    #[error(transparent)]
    Nar(#[from] nix_formats::nar::ReadError),
    /// The tree cannot be serialised as a NAR (computing its hash failed).
    #[error(transparent)]
    NarWrite(#[from] nix_formats::nar::WriteError),
    /// Storing a blob failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Storing the directories failed.
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    /// A bug: an internal invariant does not hold.
    #[error("internal error in ingest: {0}")]
    Internal(&'static str),
}
