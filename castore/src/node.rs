//! [`Node`]: what a directory entry (or a tree's root) is — a directory, a file or a symlink.

use std::fmt;

use crate::digest::B3Digest;

/// The longest symlink target, in bytes (the NAR format's bound, `PATH_MAX` minus the NUL).
pub const MAX_TARGET_LEN: usize = nix_formats::nar::MAX_TARGET_LEN;

/// A node of a tree. A tree is named by its root node: a directory's node names the directory
/// (by the digest of its canonical encoding), so one node identifies a whole tree.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A directory, stored in a [`DirectoryService`](crate::DirectoryService).
    Directory {
        /// The BLAKE3 digest of the directory's canonical encoding.
        digest: B3Digest,
        /// The number of nodes below it: each entry counts one, and a directory entry also counts
        /// its own `size`. An empty directory has size 0. It bounds the work of walking the tree
        /// before any of it is fetched, and is checked on every walk.
        size: u64,
    },
    /// A regular file, whose contents are a blob in a [`BlobService`](crate::BlobService).
    File {
        /// The BLAKE3 digest of the contents.
        digest: B3Digest,
        /// The contents' length in bytes.
        size: u64,
        /// Whether the file is executable (as in a NAR: one bit, no other mode).
        executable: bool,
    },
    /// A symbolic link.
    Symlink {
        /// Its target, raw bytes.
        target: SymlinkTarget,
    },
}

impl Node {
    /// How many nodes this node accounts for inside a parent directory: 1, plus the size of a
    /// directory.
    pub fn weight(&self) -> Option<u64> {
        match self {
            Node::Directory { size, .. } => size.checked_add(1),
            _ => Some(1),
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Directory { digest, size } => write!(f, "Directory({digest}, {size} nodes)"),
            Node::File { digest, size, executable } => {
                write!(f, "File({digest}, {size} bytes{})", if *executable { ", executable" } else { "" })
            }
            Node::Symlink { target } => write!(f, "Symlink({target:?})"),
        }
    }
}

/// A valid symlink target: 1 to [`MAX_TARGET_LEN`] bytes, without NUL.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymlinkTarget(Vec<u8>);

/// A symlink target that is empty, too long, or holds a NUL byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid symlink target '{}' ({} bytes)", String::from_utf8_lossy(&.0[..(.0.len().min(200))]), .0.len())]
pub struct InvalidSymlinkTarget(pub Vec<u8>);

impl SymlinkTarget {
    /// Checks and wraps `target`.
    pub fn new(target: impl Into<Vec<u8>>) -> Result<Self, InvalidSymlinkTarget> {
        let target = target.into();
        if nix_formats::nar::is_valid_symlink_target(&target) && target.len() <= MAX_TARGET_LEN {
            Ok(Self(target))
        } else {
            Err(InvalidSymlinkTarget(target))
        }
    }

    /// The target's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SymlinkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    #[test]
    fn symlink_targets_are_checked() {
        assert!(SymlinkTarget::new(b"".to_vec()).is_err());
        assert!(SymlinkTarget::new(b"a\0b".to_vec()).is_err());
        assert!(SymlinkTarget::new(vec![b'x'; MAX_TARGET_LEN + 1]).is_err());
        assert_eq!(SymlinkTarget::new(vec![b'x'; MAX_TARGET_LEN]).unwrap().as_bytes().len(), MAX_TARGET_LEN);
        assert_eq!(SymlinkTarget::new("../a b/ü").unwrap().as_bytes(), "../a b/ü".as_bytes());
    }

    #[test]
    fn weights() {
        let d = B3Digest::of(b"");
        assert_eq!(Node::Directory { digest: d, size: 7 }.weight(), Some(8));
        assert_eq!(Node::Directory { digest: d, size: u64::MAX }.weight(), None);
        assert_eq!(Node::File { digest: d, size: 9, executable: false }.weight(), Some(1));
    }
}
