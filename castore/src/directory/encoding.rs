//! The canonical binary encoding of a [`Directory`], whose BLAKE3 is the directory's digest.
//!
//! ```text
//! directory = "CSD1" entry*                     (entries in strictly increasing name order)
//! entry     = kind:u8 name_len:u8 name node
//! kind 1    directory: digest[32] size:u64le    (size: nodes below it)
//! kind 2    file:      digest[32] size:u64le    (size: bytes)
//! kind 3    executable file, as kind 2
//! kind 4    symlink:   target_len:u16le target  (1..=4095 bytes, no NUL)
//! ```
//!
//! Every field has a fixed width or an explicit length, and the decoder accepts only valid names,
//! strictly sorted entries, valid targets and no trailing bytes, so each directory has exactly one
//! encoding and equal directories have equal digests. The magic separates directory digests from
//! blob digests of the same bytes and leaves room for a later version.

use crate::digest::{B3Digest, DIGEST_LEN};
use crate::directory::{Directory, DirectoryError};
use crate::node::{InvalidSymlinkTarget, Node, SymlinkTarget};

/// The first bytes of every encoding: format name and version.
pub const MAGIC: &[u8; 4] = b"CSD1";

const KIND_DIRECTORY: u8 = 1;
const KIND_FILE: u8 = 2;
const KIND_EXECUTABLE: u8 = 3;
const KIND_SYMLINK: u8 = 4;

/// Why bytes are not a canonical directory encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input does not start with [`MAGIC`].
    #[error("not a directory encoding (bad magic)")]
    BadMagic,
    /// The input ends inside an entry.
    #[error("directory encoding truncated")]
    Truncated,
    /// An entry kind other than 1–4.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// An entry breaks the directory's rules (name, order, count).
    #[error(transparent)]
    Invalid(#[from] DirectoryError),
    /// A symlink target is empty, too long or holds NUL.
    #[error(transparent)]
    InvalidTarget(#[from] InvalidSymlinkTarget),
}

/// Encodes `dir` canonically.
pub fn encode(dir: &Directory) -> Vec<u8> {
    let len = MAGIC.len()
        + dir
            .entries()
            .map(|(name, node)| {
                2 + name.len()
                    + match node {
                        Node::Symlink { target } => 2 + target.as_bytes().len(),
                        _ => DIGEST_LEN + 8,
                    }
            })
            .sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    for (name, node) in dir.entries() {
        let kind = match node {
            Node::Directory { .. } => KIND_DIRECTORY,
            Node::File { executable: false, .. } => KIND_FILE,
            Node::File { executable: true, .. } => KIND_EXECUTABLE,
            Node::Symlink { .. } => KIND_SYMLINK,
        };
        out.push(kind);
        // Names are 1..=255 bytes and targets 1..=4095 bytes: Directory and SymlinkTarget check it.
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        match node {
            Node::Directory { digest, size } | Node::File { digest, size, .. } => {
                out.extend_from_slice(digest.as_bytes());
                out.extend_from_slice(&size.to_le_bytes());
            }
            Node::Symlink { target } => {
                out.extend_from_slice(&(target.as_bytes().len() as u16).to_le_bytes());
                out.extend_from_slice(target.as_bytes());
            }
        }
    }
    debug_assert_eq!(out.len(), len);
    out
}

/// A cursor over the input that fails with [`DecodeError::Truncated`] at its end.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn digest_and_size(&mut self) -> Result<(B3Digest, u64), DecodeError> {
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(self.take(DIGEST_LEN)?);
        let mut size = [0u8; 8];
        size.copy_from_slice(self.take(8)?);
        Ok((B3Digest::from_bytes(digest), u64::from_le_bytes(size)))
    }
}

/// Decodes a canonical encoding. Allocation is bounded by the input's length.
pub fn decode(bytes: &[u8]) -> Result<Directory, DecodeError> {
    let mut input = Input(bytes);
    if input.take(MAGIC.len()).map_err(|_| DecodeError::BadMagic)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let mut dir = Directory::new();
    while !input.0.is_empty() {
        let kind = input.byte()?;
        let name_len = usize::from(input.byte()?);
        let name = input.take(name_len)?;
        let node = match kind {
            KIND_DIRECTORY => {
                let (digest, size) = input.digest_and_size()?;
                Node::Directory { digest, size }
            }
            KIND_FILE | KIND_EXECUTABLE => {
                let (digest, size) = input.digest_and_size()?;
                Node::File { digest, size, executable: kind == KIND_EXECUTABLE }
            }
            KIND_SYMLINK => {
                let len = input.take(2)?;
                let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
                Node::Symlink { target: SymlinkTarget::new(input.take(len)?)? }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        dir.push(name, node)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use proptest::prelude::*;

    fn arb_node() -> impl Strategy<Value = Node> {
        prop_oneof![
            (any::<[u8; 32]>(), 0u64..1 << 40).prop_map(|(d, size)| Node::Directory { digest: B3Digest::from_bytes(d), size }),
            (any::<[u8; 32]>(), any::<u64>(), any::<bool>())
                .prop_map(|(d, size, executable)| Node::File { digest: B3Digest::from_bytes(d), size, executable }),
            proptest::collection::vec(1u8..=255, 1..300)
                .prop_map(|t| Node::Symlink { target: SymlinkTarget::new(t).expect("valid target") }),
        ]
    }

    fn arb_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..20)
            .prop_filter("not . or ..", |n| n != b"." && n != b"..")
    }

    fn arb_directory() -> impl Strategy<Value = Directory> {
        proptest::collection::btree_map(arb_name(), arb_node(), 0..20)
            .prop_map(|m| Directory::from_entries(m).expect("valid entries"))
    }

    proptest! {
        #[test]
        fn round_trip(dir in arb_directory()) {
            let bytes = dir.encode();
            prop_assert_eq!(Directory::decode(&bytes).unwrap(), dir);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            for input in [&bytes, &with_magic] {
                if let Ok(dir) = Directory::decode(input) {
                    // Whatever decodes is canonical: it encodes back to the same bytes.
                    prop_assert_eq!(&dir.encode(), input);
                }
            }
        }

        #[test]
        fn every_strict_prefix_is_rejected(dir in arb_directory()) {
            let bytes = dir.encode();
            for cut in 0..bytes.len() {
                // A prefix that ends exactly between entries is a valid smaller directory.
                if let Ok(smaller) = Directory::decode(&bytes[..cut]) {
                    prop_assert!(smaller.len() < dir.len());
                }
            }
        }
    }

    #[test]
    fn known_encoding() {
        let mut dir = Directory::new();
        dir.push(b"a".to_vec(), Node::Symlink { target: SymlinkTarget::new("t").unwrap() }).unwrap();
        dir.push(b"b".to_vec(), Node::File { digest: B3Digest::from_bytes([7; 32]), size: 3, executable: true })
            .unwrap();
        let mut expected = b"CSD1".to_vec();
        expected.extend_from_slice(&[4, 1, b'a', 1, 0, b't']);
        expected.extend_from_slice(&[3, 1, b'b']);
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&3u64.to_le_bytes());
        assert_eq!(dir.encode(), expected);
        assert_eq!(dir.digest(), B3Digest::of(&expected));
        assert_eq!(Directory::new().digest(), B3Digest::of(b"CSD1"));
    }

    #[test]
    fn rejects_non_canonical_input() {
        let mut dir = Directory::new();
        dir.push(b"a".to_vec(), Node::File { digest: B3Digest::from_bytes([1; 32]), size: 1, executable: false })
            .unwrap();
        let one = dir.encode();
        assert_eq!(Directory::decode(b"CSD2"), Err(DecodeError::BadMagic));
        assert_eq!(Directory::decode(b"CS"), Err(DecodeError::BadMagic));
        assert_eq!(Directory::decode(&one[..one.len() - 1]), Err(DecodeError::Truncated));
        // The same entry twice: duplicate.
        let mut twice = one.clone();
        twice.extend_from_slice(&one[4..]);
        assert!(matches!(Directory::decode(&twice), Err(DecodeError::Invalid(DirectoryError::UnsortedOrDuplicate { .. }))));
        // Unknown kind, empty name, name with a slash, empty symlink target.
        let mut bad = one.clone();
        bad[4] = 9;
        assert_eq!(Directory::decode(&bad), Err(DecodeError::UnknownKind(9)));
        let mut empty_name = b"CSD1\x02\x00".to_vec();
        empty_name.extend_from_slice(&[0u8; 40]);
        assert!(matches!(Directory::decode(&empty_name), Err(DecodeError::Invalid(DirectoryError::InvalidName { .. }))));
        let mut slash = one.clone();
        slash[6] = b'/';
        assert!(matches!(Directory::decode(&slash), Err(DecodeError::Invalid(DirectoryError::InvalidName { .. }))));
        assert!(matches!(Directory::decode(b"CSD1\x04\x01a\x00\x00"), Err(DecodeError::InvalidTarget(_))));
    }
}
