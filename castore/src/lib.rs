//! castore: content-addressed storage of file trees.
//!
//! (Module documentation is completed below.)

pub mod blob;
mod castore;
pub mod canonical;
pub mod chunks;
pub mod database;
pub mod digest;
pub mod directory;
pub mod directory_service;
pub mod durability;
pub mod ingest;
pub mod materialise;
pub mod node;
pub mod render;

pub use castore::{Castore, CastoreConfig, CastoreError, CastoreIngestError, BLOBS_DIR, DATABASE_FILE};
pub use chunks::{Chunk, ChunkError, ChunkIndex, SqliteChunkIndex};
pub use blob::{BlobError, BlobReader, BlobService, BlobWriter, LocalBlobService};
pub use digest::B3Digest;
pub use directory::Directory;
pub use durability::Durability;
pub use ingest::{ingest_nar, ingest_path, IngestError, IngestLimits, Ingested};
pub use materialise::{materialise, materialise_atomically, remove_tree, MaterialiseError};
pub use node::{Node, SymlinkTarget};
pub use directory_service::{Closure, DirectoryService, DirectoryServiceError, SqliteDirectoryService};
pub use render::{nar_hash, render_nar, RenderError};
