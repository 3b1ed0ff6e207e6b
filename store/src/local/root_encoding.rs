//! The castore root of a store path, as the bytes kept in `casnix.sqlite`: the canonical
//! encoding of a one-entry castore directory whose entry `root` is the root node. Reusing the
//! directory encoding gives one checked form for every kind of node.

use castore::{Directory, Node};

const ENTRY: &[u8] = b"root";

/// The bytes recorded for `root`.
pub(crate) fn encode_root(root: &Node) -> Vec<u8> {
    let mut holder = Directory::new();
    // A fresh directory with one valid name cannot refuse the entry.
    match holder.push(ENTRY.to_vec(), root.clone()) {
        Ok(()) => holder.encode(),
        Err(_) => Vec::new(),
    }
}

/// The node recorded in `bytes`, or `None` if they are not a root encoding.
pub(crate) fn decode_root(bytes: &[u8]) -> Option<Node> {
    let holder = Directory::decode(bytes).ok()?;
    if holder.len() != 1 {
        return None;
    }
    holder.get(ENTRY).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use castore::{B3Digest, SymlinkTarget};

    #[test]
    fn round_trips_every_kind() {
        let d = B3Digest::of(b"x");
        for node in [
            Node::File { digest: d, size: 3, executable: true },
            Node::Directory { digest: d, size: 9 },
            Node::Symlink { target: SymlinkTarget::new("a/b").unwrap() },
        ] {
            assert_eq!(decode_root(&encode_root(&node)), Some(node));
        }
        assert_eq!(decode_root(b"garbage"), None);
        assert_eq!(decode_root(&Directory::new().encode()), None);
    }
}
