//! castore: content-addressed storage of file trees.
//!
//! castore stores trees of files, directories and symlinks so that identical contents are kept
//! once, any tree is named by one digest, and a tree can be turned back into files (by
//! hardlinks) or into a NAR, byte for byte as Nix would dump it. It knows nothing of Nix beyond
//! the NAR format (from `nix-formats`), and nothing of sockets.
//!
//! # Data model
//! - [`B3Digest`]: a 32-byte BLAKE3 digest.
//! - A blob is a file's contents, named by the BLAKE3 of its bytes.
//! - [`Node`]: a directory (digest, `size` = number of nodes below it), a file (blob digest,
//!   byte size, executable bit), or a symlink ([`SymlinkTarget`], raw bytes).
//! - [`Directory`]: entries strictly sorted by name bytes, names valid as in a NAR (not empty,
//!   `.`, `..`; no `/` or NUL; at most 255 bytes), at most [`directory::MAX_ENTRIES`]. Its
//!   canonical encoding ([`directory::encoding`]: magic `CSD1`, then fixed-width fields per
//!   entry) has exactly one form per directory, and its BLAKE3 is the directory's digest — so a
//!   tree's root node is a Merkle root over the whole tree.
//!
//! # Services (traits, so other backends can follow)
//! - [`BlobService`], implemented by [`LocalBlobService`]: a pool of immutable files
//!   `blobs/ab/<hex>` (mode 0444) and `blobs/ab/<hex>.x` (the same bytes as an executable inode,
//!   mode 0555), mtime 1, ready to be hardlinked. Writers hash while writing; finished blobs wait
//!   in `tmp/` until [`BlobService::flush`] syncs them and renames them into place without
//!   replacing anything, so concurrent writers are safe and a crash never leaves a pool file
//!   whose bytes do not match its name. See [`blob::local`].
//! - [`DirectoryService`], implemented by [`SqliteDirectoryService`]: directories by digest, in
//!   SQLite (WAL). A directory is stored only once all its subdirectories are, with the sizes it
//!   claims, so every stored directory's closure is complete; reads check the digest.
//! - [`ChunkIndex`], implemented by [`SqliteChunkIndex`]: FastCDC chunks (about 256 KiB) of
//!   blobs of 1 MiB and more, recorded for later chunk-level sync (see [`chunks`]).
//!
//! # Operations
//! - [`ingest_path`] and [`ingest_nar`]: a file system tree or a NAR stream into blobs and
//!   directories, in one read of the input: the calling thread reads in NAR order and computes
//!   the NAR's SHA-256 and size, worker threads hash and store the contents. Both return
//!   [`Ingested`] (root node, NAR hash, NAR size).
//! - [`render_nar`] and [`nar_hash`]: a tree back into its NAR, streaming, with a read-ahead
//!   thread.
//! - [`materialise()`] and [`materialise_atomically`]: a tree written out with its files
//!   hardlinked from the pool (copied across file systems), canonical like a Nix store path
//!   (read-only, mtime 1); [`remove_tree`] deletes such a tree.
//! - [`Castore`]: the three local services under one directory (`blobs/`, `castore.sqlite`),
//!   with these operations as methods.
//!
//! # Invariants
//! - A [`Directory`] or [`SymlinkTarget`] value is always valid: constructors and the decoder
//!   check every rule, and a directory's encoding is canonical.
//! - A pool file's bytes hash to its name; pool files are never modified, only added and deleted.
//! - A directory in a [`DirectoryService`] has its whole closure stored, sizes truthful.
//! - An ingest stores its directories only after its blobs are flushed; a failed ingest stores
//!   no directory (it may leave unreferenced blobs, which are harmless and collectable).
//! - A pool file with link count 1 is used by no materialised tree (the garbage collector's rule).
//!
//! ```
//! use castore::Castore;
//!
//! let dir = tempfile::tempdir()?;
//! let source = dir.path().join("source");
//! std::fs::create_dir(&source)?;
//! std::fs::write(source.join("hello"), "hello\n")?;
//!
//! let store = Castore::open(dir.path().join("castore"))?;
//! let ingested = store.ingest_path(&source)?;
//! let mut nar = Vec::new();
//! nix_formats::nar::dump_path(&source, &mut nar)?;
//! assert_eq!(store.render_nar(&ingested.root, Vec::new())?, nar);
//! assert_eq!(ingested.nar_size, nar.len() as u64);
//!
//! let copy = dir.path().join("copy");
//! store.materialise_atomically(&ingested.root, &copy)?;
//! assert_eq!(std::fs::read(copy.join("hello"))?, b"hello\n");
//! # castore::remove_tree(&copy)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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

pub use blob::{BlobError, BlobReader, BlobService, BlobWriter, LocalBlobService};
pub use castore::{Castore, CastoreConfig, CastoreError, CastoreIngestError, BLOBS_DIR, DATABASE_FILE};
pub use chunks::{Chunk, ChunkError, ChunkIndex, SqliteChunkIndex};
pub use digest::B3Digest;
pub use directory::Directory;
pub use directory_service::{Closure, DirectoryService, DirectoryServiceError, SqliteDirectoryService};
pub use durability::Durability;
pub use ingest::{ingest_nar, ingest_nar_staged, ingest_path, IngestError, IngestLimits, Ingested, StagedNar};
pub use materialise::{materialise, materialise_atomically, materialise_many_atomically, remove_tree, MaterialiseError};
pub use node::{Node, SymlinkTarget};
pub use render::{nar_hash, render_nar, RenderError};
