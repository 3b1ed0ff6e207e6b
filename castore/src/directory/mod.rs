//! [`Directory`]: one level of a Merkle tree — entries sorted by name, each a [`Node`].
//!
//! A directory is valid by construction: names are checked (not empty, `.` or `..`, no `/` or NUL,
//! at most [`MAX_NAME_LEN`] bytes), strictly increasing in byte order, at most [`MAX_ENTRIES`] of
//! them, and the node count ([`Directory::size`]) does not overflow. Its canonical encoding
//! ([`Directory::encode`], see [`encoding`]) is the only one [`Directory::decode`] accepts, and
//! its BLAKE3 is the directory's digest.

pub mod encoding;

use crate::digest::B3Digest;
use crate::node::Node;

pub use encoding::DecodeError;

/// The longest entry name, in bytes (the NAR format's bound, Linux's `NAME_MAX`).
pub const MAX_NAME_LEN: usize = nix_formats::nar::MAX_NAME_LEN;

/// The most entries one directory may hold. Far beyond real trees; it bounds one directory's
/// encoding to about 300 MiB (typically 60 MiB).
pub const MAX_ENTRIES: usize = 1 << 20;

/// Why an entry cannot be added to a [`Directory`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The name is empty, `.`, `..`, longer than [`MAX_NAME_LEN`], or holds `/` or NUL.
    #[error("invalid entry name '{}'", String::from_utf8_lossy(name))]
    InvalidName {
        /// The name.
        name: Vec<u8>,
    },
    /// The name is not greater than the previous entry's (entries must be strictly sorted).
    #[error("entry '{}' is not sorted after '{}' (or is a duplicate)", String::from_utf8_lossy(name), String::from_utf8_lossy(previous))]
    UnsortedOrDuplicate {
        /// The previous entry's name.
        previous: Vec<u8>,
        /// The offending name.
        name: Vec<u8>,
    },
    /// The directory already holds [`MAX_ENTRIES`] entries.
    #[error("directory has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    /// The node count below the directory does not fit in 64 bits.
    #[error("directory node count overflows")]
    SizeOverflow,
}

/// Whether `name` may name an entry (see the module documentation).
pub fn is_valid_name(name: &[u8]) -> bool {
    name.len() <= MAX_NAME_LEN && nix_formats::nar::is_valid_entry_name(name)
}

/// A directory: entries strictly sorted by name, each naming a [`Node`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    entries: Vec<(Vec<u8>, Node)>,
    /// Nodes below this directory (see [`Node::Directory`]'s `size`).
    size: u64,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry; `name` must be greater than every name already present.
    pub fn push(&mut self, name: impl Into<Vec<u8>>, node: Node) -> Result<(), DirectoryError> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(DirectoryError::InvalidName { name });
        }
        if let Some((previous, _)) = self.entries.last() {
            if name.as_slice() <= previous.as_slice() {
                return Err(DirectoryError::UnsortedOrDuplicate { previous: previous.clone(), name });
            }
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(DirectoryError::TooManyEntries);
        }
        let size = node.weight().and_then(|w| self.size.checked_add(w)).ok_or(DirectoryError::SizeOverflow)?;
        self.entries.push((name, node));
        self.size = size;
        Ok(())
    }

    /// A directory of these entries, in any order (they are sorted; duplicates are an error).
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Node)>) -> Result<Self, DirectoryError> {
        let mut entries: Vec<(Vec<u8>, Node)> = entries.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dir = Self::new();
        for (name, node) in entries {
            dir.push(name, node)?;
        }
        Ok(dir)
    }

    /// The entries, sorted by name.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&[u8], &Node)> + '_ {
        self.entries.iter().map(|(name, node)| (name.as_slice(), node))
    }

    /// The node named `name`, if any.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.entries.binary_search_by(|(n, _)| n.as_slice().cmp(name)).ok().map(|i| &self.entries[i].1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of nodes below this directory: each entry counts one, and each directory entry its
    /// own size too.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The canonical encoding (see [`encoding`]).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a canonical encoding; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes)
    }

    /// The directory's digest: the BLAKE3 of its canonical encoding.
    pub fn digest(&self) -> B3Digest {
        B3Digest::of(&self.encode())
    }

    /// The node that names this directory: its digest and size.
    pub fn node(&self) -> Node {
        Node::Directory { digest: self.digest(), size: self.size }
    }

    /// The digests of the directories directly inside this one, with their claimed sizes.
    pub fn subdirectories(&self) -> impl Iterator<Item = (&[u8], B3Digest, u64)> + '_ {
        self.entries.iter().filter_map(|(name, node)| match node {
            Node::Directory { digest, size } => Some((name.as_slice(), *digest, *size)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use crate::node::SymlinkTarget;

    fn file(byte: u8) -> Node {
        Node::File { digest: B3Digest::from_bytes([byte; 32]), size: u64::from(byte), executable: false }
    }

    #[test]
    fn push_checks_names_and_order() {
        let mut d = Directory::new();
        d.push(b"b".to_vec(), file(1)).unwrap();
        assert!(matches!(d.push(b"a".to_vec(), file(1)), Err(DirectoryError::UnsortedOrDuplicate { .. })));
        assert!(matches!(d.push(b"b".to_vec(), file(1)), Err(DirectoryError::UnsortedOrDuplicate { .. })));
        for bad in [&b""[..], b".", b"..", b"c/d", b"c\0", &[b'z'; 256][..]] {
            assert!(matches!(d.push(bad.to_vec(), file(1)), Err(DirectoryError::InvalidName { .. })), "{bad:?}");
        }
        d.push(vec![b'z'; 255], file(2)).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(b"b"), Some(&file(1)));
        assert_eq!(d.get(b"c"), None);
    }

    #[test]
    fn from_entries_sorts_and_rejects_duplicates() {
        let d = Directory::from_entries([(b"y".to_vec(), file(1)), (b"x".to_vec(), file(2))]).unwrap();
        assert_eq!(d.entries().map(|(n, _)| n.to_vec()).collect::<Vec<_>>(), [b"x".to_vec(), b"y".to_vec()]);
        assert!(Directory::from_entries([(b"x".to_vec(), file(1)), (b"x".to_vec(), file(2))]).is_err());
    }

    #[test]
    fn size_counts_nodes_below() {
        let mut inner = Directory::new();
        inner.push(b"f".to_vec(), file(1)).unwrap();
        inner.push(b"l".to_vec(), Node::Symlink { target: SymlinkTarget::new("x").unwrap() }).unwrap();
        assert_eq!(inner.size(), 2);
        let mut outer = Directory::new();
        outer.push(b"d".to_vec(), inner.node()).unwrap();
        outer.push(b"e".to_vec(), Directory::new().node()).unwrap();
        assert_eq!(outer.size(), 4);
        let mut huge = Directory::new();
        huge.push(b"a".to_vec(), Node::Directory { digest: B3Digest::of(b""), size: u64::MAX - 1 }).unwrap();
        assert_eq!(
            huge.push(b"b".to_vec(), file(0)),
            Err(DirectoryError::SizeOverflow),
        );
    }
}
