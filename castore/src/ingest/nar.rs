//! Ingest from a NAR stream, in one pass: blobs are written while the archive is read, and the
//! archive's SHA-256 and size are computed on the way.

use std::io::{self, Read, Write};

use nix_formats::hash::{Algorithm, Hash, Hasher};
use nix_formats::nar::{Event, Reader};

use super::tree::{FileResult, Pending, PendingTree};
use super::{IngestError, IngestLimits};
use crate::blob::{BlobError, BlobService};
use crate::directory_service::DirectoryService;
use crate::node::{Node, SymlinkTarget};

/// Size of the buffer that carries file contents from the archive to the blob writer.
const COPY_BUFFER_SIZE: usize = 1 << 20;

/// The result of [`ingest_nar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarIngest {
    /// The tree's root node.
    pub root: Node,
    /// The SHA-256 of the archive's bytes (Nix's "NAR hash").
    pub nar_hash: Hash,
    /// The archive's size in bytes.
    pub nar_size: u64,
}

/// Hashes and counts what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Ingests the NAR at the start of `input` and returns its root node, SHA-256 and size.
///
/// Reads exactly the archive's bytes and nothing after it (so `input` can be a protocol stream;
/// wrap an unbuffered one in a [`std::io::BufReader`] first, and keep it to read what follows).
/// Malformed or truncated archives are refused with the reader's errors ([`IngestError::Nar`]);
/// then no directory has been stored, only unreferenced blobs may have been.
pub fn ingest_nar<R: Read>(
    input: R,
    limits: &IngestLimits,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<NarIngest, IngestError> {
    let hashing = HashingReader { inner: input, hasher: Hasher::new(Algorithm::Sha256), count: 0 };
    let mut reader = Reader::new(hashing, limits.nar);
    let mut tree = PendingTree::new(limits.max_nodes);
    let mut files: Vec<FileResult> = Vec::new();
    let mut buffer = Vec::new();
    // Open directories (node indices), innermost last, and the name of the entry being read.
    let mut open: Vec<usize> = Vec::new();
    let mut entry_name: Option<Vec<u8>> = None;
    loop {
        let (index, is_directory) = match reader.next()? {
            None => break,
            Some(Event::Entry { name }) => {
                entry_name = Some(name.to_vec());
                continue;
            }
            Some(Event::DirectoryEnd) => {
                open.pop();
                continue;
            }
            Some(Event::DirectoryStart) => (tree.push(Pending::Directory(Vec::new()))?, true),
            Some(Event::Symlink { target }) => {
                let target = SymlinkTarget::new(target).map_err(|source| IngestError::InvalidSymlinkTarget {
                    path: String::from_utf8_lossy(reader.path()).into_owned().into(),
                    source,
                })?;
                (tree.push(Pending::Symlink(target))?, false)
            }
            Some(Event::Regular { executable, size: _ }) => {
                let (index, slot) = tree.push_file()?;
                debug_assert_eq!(slot, files.len());
                let mut writer = if executable { blobs.executable_writer()? } else { blobs.writer()? };
                if buffer.is_empty() {
                    buffer.resize(COPY_BUFFER_SIZE, 0);
                }
                loop {
                    let n = reader.read_contents(&mut buffer)?;
                    if n == 0 {
                        break;
                    }
                    writer.write_all(&buffer[..n]).map_err(|e| BlobError::io("<blob writer>", e))?;
                }
                let (digest, size) = writer.finish()?;
                files.push(FileResult { digest, size, executable });
                (index, false)
            }
        };
        match (open.last(), entry_name.take()) {
            (Some(&parent), Some(name)) => tree.add_entry(parent, name, index),
            (None, None) => {}
            _ => return Err(IngestError::Internal("NAR node outside of an entry")),
        }
        if is_directory {
            open.push(index);
        }
    }
    let HashingReader { hasher, count, .. } = reader.into_inner();
    blobs.flush()?;
    let (root, dirs) = tree.finish(&files)?;
    if !dirs.is_empty() {
        directories.put_many(&dirs)?;
    }
    Ok(NarIngest { root, nar_hash: hasher.finish(), nar_size: count })
}
