//! Listing a NAR's nodes, for `nix nar ls -R`-like output.

use std::io::Read;

use super::errors::ReadError;
use super::limits::Limits;
use super::reader::{Event, Reader};

/// What a node of a NAR is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListNode {
    /// A regular file.
    Regular {
        /// Whether it is executable.
        executable: bool,
        /// Its size in bytes.
        size: u64,
        /// Offset of its contents in the archive (Nix's `narOffset`).
        nar_offset: u64,
    },
    /// A symlink.
    Symlink {
        /// Its raw target.
        target: Vec<u8>,
    },
    /// A directory; its entries follow it in the listing.
    Directory,
}

/// One node of a NAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The node's path inside the archive: entry names joined by `/`, empty for the root. Raw bytes.
    pub path: Vec<u8>,
    /// What the node is.
    pub node: ListNode,
}

/// Every node of the NAR read from `input`, in archive order (a directory before its entries,
/// entries sorted by name), validating the whole archive. Reading stops at the archive's end.
///
/// Memory is proportional to the number of nodes (each path is bounded by
/// [`Limits::max_path_len`]); file contents are skipped, not stored.
pub fn list<R: Read>(input: R, limits: &Limits) -> Result<Vec<ListEntry>, ReadError> {
    let mut reader = Reader::new(input, *limits);
    let mut entries = Vec::new();
    loop {
        let node = match reader.next()? {
            None => return Ok(entries),
            Some(Event::Entry { .. } | Event::DirectoryEnd) => continue,
            Some(Event::DirectoryStart) => ListNode::Directory,
            Some(Event::Symlink { target }) => ListNode::Symlink { target: target.to_vec() },
            // The contents start right after the header just read.
            Some(Event::Regular { executable, size }) => {
                ListNode::Regular { executable, size, nar_offset: reader.position() }
            }
        };
        let path = reader.path().to_vec();
        entries.push(ListEntry { path, node });
    }
}
