//! A tree whose structure is known before its file digests are: ingest records the structure
//! while blobs are written (possibly on other threads), then builds the directories bottom-up.

use crate::digest::B3Digest;
use crate::directory::Directory;
use crate::ingest::IngestError;
use crate::node::{Node, SymlinkTarget};

/// A node whose file digests may not be known yet.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A regular file; its digest and size will be in slot `slot` of the file results.
    File { slot: usize },
    /// A symlink.
    Symlink(SymlinkTarget),
    /// A directory: entries (name, index of the child node), sorted by name.
    Directory(Vec<(Vec<u8>, usize)>),
}

/// What a file became: its digest, size and executable bit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileResult {
    pub digest: B3Digest,
    pub size: u64,
    pub executable: bool,
}

/// Nodes in pre-order: the root is node 0, and every child comes after its parent.
#[derive(Debug, Default)]
pub(crate) struct PendingTree {
    nodes: Vec<Pending>,
    files: usize,
    max_nodes: u64,
}

impl PendingTree {
    pub fn new(max_nodes: u64) -> Self {
        Self { nodes: Vec::new(), files: 0, max_nodes }
    }

    /// Adds a node and returns its index.
    pub fn push(&mut self, node: Pending) -> Result<usize, IngestError> {
        if self.nodes.len() as u64 >= self.max_nodes {
            return Err(IngestError::TooManyNodes { max: self.max_nodes });
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Adds a file node with the next free slot; returns (node index, slot).
    pub fn push_file(&mut self) -> Result<(usize, usize), IngestError> {
        let slot = self.files;
        let index = self.push(Pending::File { slot })?;
        self.files += 1;
        Ok((index, slot))
    }

    /// The node at `index`.
    pub fn get(&self, index: usize) -> Option<&Pending> {
        self.nodes.get(index)
    }

    /// Number of file slots handed out.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// Adds `child` under the directory node `parent` (names must come in increasing order;
    /// [`finish`](Self::finish) checks).
    pub fn add_entry(&mut self, parent: usize, name: Vec<u8>, child: usize) {
        if let Some(Pending::Directory(entries)) = self.nodes.get_mut(parent) {
            entries.push((name, child));
        }
    }

    /// Builds the root node and the directories, children before parents (each distinct
    /// directory once), from the files' results indexed by slot.
    pub fn finish(self, files: &[FileResult]) -> Result<(Node, Vec<Directory>), IngestError> {
        let mut built: Vec<Option<Node>> = Vec::with_capacity(self.nodes.len());
        built.resize_with(self.nodes.len(), || None);
        let mut directories = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, pending) in self.nodes.into_iter().enumerate().rev() {
            let node = match pending {
                Pending::File { slot } => {
                    let result = files.get(slot).ok_or(IngestError::Internal("file slot without result"))?;
                    Node::File { digest: result.digest, size: result.size, executable: result.executable }
                }
                Pending::Symlink(target) => Node::Symlink { target },
                Pending::Directory(entries) => {
                    let mut directory = Directory::new();
                    for (name, child) in entries {
                        let node = built
                            .get_mut(child)
                            .and_then(Option::take)
                            .ok_or(IngestError::Internal("child node built out of order"))?;
                        directory.push(name, node).map_err(IngestError::InvalidDirectory)?;
                    }
                    let node = directory.node();
                    if let Node::Directory { digest, .. } = &node {
                        if seen.insert(*digest) {
                            directories.push(directory);
                        }
                    }
                    node
                }
            };
            built[index] = Some(node);
        }
        let root = built.into_iter().next().flatten().ok_or(IngestError::Internal("empty tree"))?;
        Ok((root, directories))
    }
}
