//! The local store's typed errors.

use std::path::PathBuf;

use nix_formats::hash::Hash;

use crate::db::DbError;

/// Everything that can go wrong in [`Store`](super::Store) operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The path-info database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The castore could not be opened.
    #[error(transparent)]
    CastoreOpen(#[from] castore::CastoreError),
    /// Ingesting contents into the castore failed (malformed NAR, I/O, limits).
    #[error(transparent)]
    Ingest(#[from] castore::CastoreIngestError),
    /// Writing a path into the store directory failed.
    #[error(transparent)]
    Materialise(#[from] castore::MaterialiseError),
    /// Rendering a NAR from the castore failed.
    #[error(transparent)]
    Render(#[from] castore::RenderError),
    /// Reading a blob failed.
    #[error(transparent)]
    Blob(#[from] castore::BlobError),
    /// Reading a castore directory failed.
    #[error(transparent)]
    Directory(#[from] castore::DirectoryServiceError),
    /// Dumping a path from disk failed.
    #[error(transparent)]
    Nar(#[from] nix_formats::nar::WriteError),
    /// An object could not be hashed as a Git object.
    #[error(transparent)]
    GitHash(#[from] nix_formats::git::GitHashError),
    /// A store path could not be computed or parsed.
    #[error(transparent)]
    StorePath(#[from] nix_formats::store_path::StorePathError),
    /// A file-system operation failed.
    #[error("{context} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The NAR's SHA-256 is not the one the path info claims (Nix's words).
    #[error("hash mismatch importing path '{}';\n  specified: {}\n  got:       {}", .0.path, .0.expected_text(), .0.got_text())]
    HashMismatch(Box<Mismatch>),
    /// The NAR's size is not the one the path info claims (Nix's words).
    #[error("size mismatch importing path '{path}';\n  specified: {expected}\n  got:       {got}")]
    SizeMismatch {
        /// The store path.
        path: String,
        /// The size claimed.
        expected: u64,
        /// The size received.
        got: u64,
    },
    /// The contents do not hash to the content address claimed (Nix's words).
    #[error("ca hash mismatch importing path '{}';\n  specified: {}\n  got:       {}", .0.path, .0.expected_text(), .0.got_text())]
    CaHashMismatch(Box<Mismatch>),
    /// A path's contents no longer hash to the recorded NAR hash (Nix's words).
    #[error("hash of path '{}' has changed from '{}' to '{}'!", .0.path, .0.expected_text(), .0.got_text())]
    ContentsChanged(Box<Mismatch>),
    /// An export stream is malformed.
    #[error(transparent)]
    Export(#[from] super::export_format::ExportFormatError),
    /// The content address, name and references give another store path than the one claimed
    /// (Nix's words; `computed` is empty where Nix gives no path, a text address with a
    /// self-reference).
    #[error("cannot add path '{path}' to the Nix store because it claims to be content-addressed but isn't")]
    CaPathMismatch {
        /// The store path claimed.
        path: String,
        /// The content address.
        ca: String,
        /// The path the address gives.
        computed: String,
    },
    /// A flat or non-SHA-256 content address with references (Nix's words).
    #[error("fixed output derivation '{name}' is not allowed to refer to other store paths.\nYou may need to use the 'unsafeDiscardReferences' derivation attribute, see the manual for more details.")]
    CaReferencesNotAllowed {
        /// The path's name.
        name: String,
    },
    /// A flat or text content address for a directory (Nix's words: it tries to read it).
    #[error("reading from file '{0}': Is a directory")]
    FlatIsDirectory(String),
    /// Flat and text content addresses need a single regular file.
    #[error("path '{path}' has a {method} content address but is not a regular file")]
    NotAFlatFile {
        /// The store path.
        path: String,
        /// The method claimed.
        method: &'static str,
    },
    /// A path is neither trusted, content-addressed, nor signed by a trusted key (Nix's words).
    #[error("cannot add path '{0}' because it lacks a signature by a trusted key")]
    Untrusted(String),
    /// A path that must be valid is not.
    #[error("path '{0}' is not valid")]
    InvalidPath(String),
    /// The recorded castore root of a path could not be decoded.
    #[error("the castore root recorded for '{0}' is corrupt")]
    CorruptCastoreRoot(String),
    /// A `.drv` path's contents are not a derivation that parses.
    #[error("derivation '{path}': {source}")]
    Derivation {
        /// The store path.
        path: String,
        /// The parse error.
        source: nix_formats::derivation::AtermError,
    },
    /// A `.drv` path's contents are not a regular file of sane size.
    #[error("derivation '{0}' is not a regular file of at most 64 MiB")]
    DerivationNotAFile(String),
    /// The same path appears twice in one batch.
    #[error("path '{0}' appears twice in one batch")]
    DuplicatePath(String),
    /// A path asked to be deleted is alive (Nix's text, from `collectGarbage`).
    #[error("Cannot delete path '{0}' since it is still alive. To find out why, use: nix-store --query --roots and nix-store --query --referrers")]
    StillAlive(String),
    /// A request Nix refuses, with Nix's message.
    #[error("{0}")]
    Refused(String),
}

/// A hash that differs from the one claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The store path.
    pub path: String,
    /// The hash claimed.
    pub expected: Hash,
    /// The hash of what was received.
    pub got: Hash,
}

impl Mismatch {
    fn expected_text(&self) -> String {
        self.expected.encode(nix_formats::hash::Encoding::Nix32, true)
    }

    fn got_text(&self) -> String {
        self.got.encode(nix_formats::hash::Encoding::Nix32, true)
    }
}

impl StoreError {
    /// A closure turning an I/O error into [`StoreError::Io`].
    pub fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { context, path, source }
    }
}
