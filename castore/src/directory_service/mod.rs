//! Directory services: Merkle directories addressed by the digest of their encoding.
//!
//! [`DirectoryService`] is the interface; [`SqliteDirectoryService`] stores them in SQLite.
//! Every implementation keeps one invariant: a directory is stored only once every directory it
//! names is stored, with the size it claims. So the closure of a stored directory is always
//! complete, and a directory node's `size` bounds the work of walking it.

pub mod sqlite;

use std::collections::HashMap;

use crate::database::DatabaseError;
use crate::digest::B3Digest;
use crate::directory::{DecodeError, Directory};

pub use sqlite::SqliteDirectoryService;

/// Errors of directory services.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryServiceError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A directory names a subdirectory that is neither stored nor earlier in the same batch.
    #[error("directory {parent} names subdirectory {child}, which is not stored")]
    MissingChild {
        /// The directory being stored.
        parent: B3Digest,
        /// The missing subdirectory.
        child: B3Digest,
    },
    /// A directory was expected (named by a stored directory or by a root node) but is not stored.
    #[error("directory {0} not found")]
    NotFound(B3Digest),
    /// A node claims a directory size different from the directory's.
    #[error("directory {digest} has size {actual}, but is named with size {claimed}")]
    SizeMismatch {
        /// The directory.
        digest: B3Digest,
        /// The size in the naming node.
        claimed: u64,
        /// The directory's real size.
        actual: u64,
    },
    /// Stored bytes are not a valid encoding.
    #[error("stored directory {digest} is corrupt: {source}")]
    Corrupt {
        /// The directory.
        digest: B3Digest,
        /// What is wrong with the bytes.
        #[source]
        source: DecodeError,
    },
    /// Stored bytes do not hash to the digest they are stored under.
    #[error("stored directory {0} does not match its digest")]
    DigestMismatch(B3Digest),
}

impl From<rusqlite::Error> for DirectoryServiceError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(DatabaseError::Sqlite(e))
    }
}

/// Every directory of a tree, by digest (each distinct directory once).
#[derive(Debug, Clone, Default)]
pub struct Closure {
    directories: HashMap<B3Digest, Directory>,
}

impl Closure {
    /// The directory with this digest, if it is part of the closure.
    pub fn get(&self, digest: &B3Digest) -> Result<&Directory, DirectoryServiceError> {
        self.directories.get(digest).ok_or(DirectoryServiceError::NotFound(*digest))
    }

    /// Number of distinct directories.
    pub fn len(&self) -> usize {
        self.directories.len()
    }

    /// Whether the closure is empty (it never is once built from a root).
    pub fn is_empty(&self) -> bool {
        self.directories.is_empty()
    }

    /// The directories, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&B3Digest, &Directory)> + '_ {
        self.directories.iter()
    }
}

/// Stores Merkle directories. Implementations are safe to share between threads.
pub trait DirectoryService: Send + Sync {
    /// The directory with this digest, or `None`. Implementations check that the stored bytes
    /// decode and hash to `digest`.
    fn get(&self, digest: &B3Digest) -> Result<Option<Directory>, DirectoryServiceError>;

    /// Whether the directory is stored.
    fn has(&self, digest: &B3Digest) -> Result<bool, DirectoryServiceError>;

    /// Stores directories in one transaction (all or none), children before parents: each
    /// subdirectory must be stored already or come earlier in `directories`, with the size its
    /// parent claims. Storing a directory that exists is a no-op. Returns their digests.
    fn put_many(&self, directories: &[Directory]) -> Result<Vec<B3Digest>, DirectoryServiceError>;

    /// Stores one directory (see [`put_many`](Self::put_many)).
    fn put(&self, directory: &Directory) -> Result<B3Digest, DirectoryServiceError> {
        let digests = self.put_many(std::slice::from_ref(directory))?;
        digests.into_iter().next().ok_or(DirectoryServiceError::NotFound(directory.digest()))
    }

    /// Every directory of the tree whose root directory has this digest and claimed size,
    /// checking that each is stored and has the size its parent claims.
    fn closure(&self, root: &B3Digest, size: u64) -> Result<Closure, DirectoryServiceError> {
        walk_closure(root, size, |digest| self.get(digest))
    }
}

/// Walks the tree below `root` (claimed `size`) with `get`, checking presence and sizes.
pub(crate) fn walk_closure(
    root: &B3Digest,
    size: u64,
    mut get: impl FnMut(&B3Digest) -> Result<Option<Directory>, DirectoryServiceError>,
) -> Result<Closure, DirectoryServiceError> {
    let mut closure = Closure::default();
    let mut queue = vec![(*root, size)];
    while let Some((digest, claimed)) = queue.pop() {
        if let Some(known) = closure.directories.get(&digest) {
            check_size(&digest, claimed, known.size())?;
            continue;
        }
        let directory = get(&digest)?.ok_or(DirectoryServiceError::NotFound(digest))?;
        check_size(&digest, claimed, directory.size())?;
        queue.extend(directory.subdirectories().map(|(_, d, s)| (d, s)));
        closure.directories.insert(digest, directory);
    }
    Ok(closure)
}

fn check_size(digest: &B3Digest, claimed: u64, actual: u64) -> Result<(), DirectoryServiceError> {
    if claimed == actual {
        Ok(())
    } else {
        Err(DirectoryServiceError::SizeMismatch { digest: *digest, claimed, actual })
    }
}
