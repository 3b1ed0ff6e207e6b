//! [`Castore`]: a blob pool, a directory service and a chunk index under one directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix_formats::hash::Hash;

use crate::blob::{BlobError, LocalBlobService};
use crate::chunks::{ChunkError, ChunkIndex, SqliteChunkIndex};
use crate::directory_service::{DirectoryServiceError, SqliteDirectoryService};
use crate::durability::Durability;
use crate::ingest::{self, IngestError, IngestLimits, Ingested};
use crate::materialise::{self, MaterialiseError};
use crate::node::Node;
use crate::render::{self, RenderError};

/// Name of the blob pool under the castore's directory.
pub const BLOBS_DIR: &str = "blobs";

/// Name of the database file under the castore's directory.
pub const DATABASE_FILE: &str = "castore.sqlite";

/// How to open a [`Castore`].
#[derive(Debug, Clone)]
pub struct CastoreConfig {
    /// The castore's directory: `blobs/` and `castore.sqlite` live in it. The store directory
    /// that trees are materialised into should be on the same file system, so that files can be
    /// hardlinked from the pool.
    pub root: PathBuf,
    /// Bounds on each ingest.
    pub limits: IngestLimits,
    /// Whether ingests also record the chunks of large blobs. Off by default: it costs a second
    /// read and hash of large files, and [`ChunkIndex::chunks`] computes and records them on
    /// first use anyway.
    pub index_chunks_on_ingest: bool,
    /// Whether blobs, materialised trees and database commits are synced to stable storage.
    pub durability: Durability,
}

impl CastoreConfig {
    /// The default configuration for the castore at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), limits: IngestLimits::default(), index_chunks_on_ingest: false, durability: Durability::Synced }
    }
}

/// Errors of opening a castore.
#[derive(Debug, thiserror::Error)]
pub enum CastoreError {
    /// Creating the directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The blob pool could not be opened.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database could not be opened.
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    /// The chunk index could not be opened.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

/// Errors of [`Castore::ingest_path`] and [`Castore::ingest_nar`] with chunk indexing on.
#[derive(Debug, thiserror::Error)]
pub enum CastoreIngestError {
    /// The ingest failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Indexing chunks failed (the tree itself was stored).
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

/// A local castore: [`LocalBlobService`] at `root/blobs`, [`SqliteDirectoryService`] and
/// [`SqliteChunkIndex`] in `root/castore.sqlite`. Shareable between threads.
#[derive(Debug)]
pub struct Castore {
    config: CastoreConfig,
    blobs: LocalBlobService,
    directories: SqliteDirectoryService,
    chunks: SqliteChunkIndex,
}

impl Castore {
    /// Opens (creating if needed) the castore at `root` with the default configuration.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, CastoreError> {
        Self::open_with(CastoreConfig::new(root))
    }

    /// Opens (creating if needed) the castore that `config` describes.
    pub fn open_with(config: CastoreConfig) -> Result<Self, CastoreError> {
        std::fs::create_dir_all(&config.root).map_err(|source| CastoreError::Io { path: config.root.clone(), source })?;
        let blobs = LocalBlobService::open_with(config.root.join(BLOBS_DIR), config.durability)?;
        let database = config.root.join(DATABASE_FILE);
        let directories = SqliteDirectoryService::open_with(&database, config.durability)?;
        let chunks = SqliteChunkIndex::open_with(&database, config.durability)?;
        Ok(Self { config, blobs, directories, chunks })
    }

    /// The castore's directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// The blob pool.
    pub fn blobs(&self) -> &LocalBlobService {
        &self.blobs
    }

    /// The directory service.
    pub fn directories(&self) -> &SqliteDirectoryService {
        &self.directories
    }

    /// The chunk index.
    pub fn chunk_index(&self) -> &SqliteChunkIndex {
        &self.chunks
    }

    fn after_ingest(&self, root: &Node) -> Result<(), CastoreIngestError> {
        if self.config.index_chunks_on_ingest {
            self.chunks.index_tree(root, &self.blobs, &self.directories)?;
        }
        Ok(())
    }

    /// Ingests the file system tree at `path` (see [`ingest::ingest_path`]).
    pub fn ingest_path(&self, path: &Path) -> Result<Ingested, CastoreIngestError> {
        let result = ingest::ingest_path(path, &self.config.limits, &self.blobs, &self.directories)?;
        self.after_ingest(&result.root)?;
        Ok(result)
    }

    /// Ingests the NAR at the start of `input` (see [`ingest::ingest_nar`]).
    pub fn ingest_nar(&self, input: impl Read) -> Result<Ingested, CastoreIngestError> {
        let result = ingest::ingest_nar(input, &self.config.limits, &self.blobs, &self.directories)?;
        self.after_ingest(&result.root)?;
        Ok(result)
    }

    /// Ingests the NAR at the start of `input` up to the durability barrier (see
    /// [`ingest::ingest_nar_staged`]); [`Castore::commit_staged`] completes it.
    pub fn ingest_nar_staged(&self, input: impl Read) -> Result<ingest::StagedNar, CastoreIngestError> {
        Ok(ingest::ingest_nar_staged(input, &self.config.limits, &self.blobs)?)
    }

    /// Makes staged NARs durable together: one blob flush, one directory transaction.
    pub fn commit_staged<'a>(&self, staged: impl IntoIterator<Item = &'a ingest::StagedNar> + Clone) -> Result<(), CastoreIngestError> {
        ingest::StagedNar::commit_all(staged.clone(), &self.blobs, &self.directories)?;
        for s in staged {
            self.after_ingest(&s.ingested.root)?;
        }
        Ok(())
    }

    /// Creates several trees atomically with one durability barrier (see
    /// [`materialise::materialise_many_atomically`]).
    pub fn materialise_many_atomically(&self, items: &[(&Node, &Path)]) -> Result<(), MaterialiseError> {
        materialise::materialise_many_atomically(items, &self.blobs, &self.directories, self.config.durability)
    }

    /// Writes the NAR of the tree `root` (see [`render::render_nar`]).
    pub fn render_nar<W: Write>(&self, root: &Node, out: W) -> Result<W, RenderError> {
        render::render_nar(root, &self.blobs, &self.directories, out)
    }

    /// The SHA-256 and size of the tree's NAR.
    pub fn nar_hash(&self, root: &Node) -> Result<(Hash, u64), RenderError> {
        render::nar_hash(root, &self.blobs, &self.directories)
    }

    /// Creates the tree at `dest` (see [`materialise::materialise`]).
    pub fn materialise(&self, root: &Node, dest: &Path) -> Result<(), MaterialiseError> {
        materialise::materialise(root, dest, &self.blobs, &self.directories)
    }

    /// Creates the tree at `dest` atomically (see [`materialise::materialise_atomically`]).
    pub fn materialise_atomically(&self, root: &Node, dest: &Path) -> Result<(), MaterialiseError> {
        materialise::materialise_atomically(root, dest, &self.blobs, &self.directories, self.config.durability)
    }
}
