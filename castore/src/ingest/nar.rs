//! Ingest from a NAR stream, in one pass: blobs are written while the archive is read, and the
//! archive's SHA-256 and size are computed on the way.

use std::io::{self, Read};

use nix_formats::hash::{Algorithm, Hasher};
use nix_formats::nar::{Event, ReadError, Reader};

use super::pipeline::{self, Pipeline, CHUNK_SIZE, WHOLE_LIMIT};
use super::tree::{Pending, PendingTree};
use super::{IngestError, IngestLimits, Ingested};
use crate::blob::BlobService;
use crate::directory::Directory;
use crate::directory_service::DirectoryService;
use crate::node::SymlinkTarget;

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

/// Ingests the NAR at the start of `input`; returns its root node, SHA-256 and size.
///
/// Reads exactly the archive's bytes and nothing after it (so `input` can be a protocol stream;
/// wrap an unbuffered one in a [`std::io::BufReader`] first, and keep it to read what follows).
/// The calling thread parses and hashes; worker threads store the contents meanwhile. Malformed
/// or truncated archives are refused with the reader's errors ([`IngestError::Nar`]); then no
/// directory has been stored, only unreferenced blobs may have been.
pub fn ingest_nar<R: Read>(
    input: R,
    limits: &IngestLimits,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<Ingested, IngestError> {
    let staged = ingest_nar_staged(input, limits, blobs)?;
    staged.commit(blobs, directories)?;
    Ok(staged.ingested)
}

/// A NAR ingested up to its durability barrier: its new blobs are staged in the blob service
/// (readable, not yet flushed) and its directories are not stored yet. Several are made
/// durable with one flush and one transaction by [`StagedNar::commit_all`].
#[derive(Debug, Clone)]
pub struct StagedNar {
    /// The tree, and the NAR's hash and size.
    pub ingested: Ingested,
    /// The tree's directories, children before parents.
    pub directories: Vec<Directory>,
}

impl StagedNar {
    /// Flushes the blobs and stores the directories of this NAR.
    pub fn commit(&self, blobs: &dyn BlobService, directories: &dyn DirectoryService) -> Result<(), IngestError> {
        Self::commit_all([self], blobs, directories)
    }

    /// Flushes the staged blobs (one barrier for all) and stores the directories of `staged`
    /// in one transaction.
    pub fn commit_all<'a>(
        staged: impl IntoIterator<Item = &'a StagedNar>,
        blobs: &dyn BlobService,
        directories: &dyn DirectoryService,
    ) -> Result<(), IngestError> {
        blobs.flush()?;
        let dirs: Vec<Directory> = staged.into_iter().flat_map(|s| s.directories.iter().cloned()).collect();
        if !dirs.is_empty() {
            directories.put_many(&dirs)?;
        }
        Ok(())
    }
}

/// [`ingest_nar`] up to the durability barrier: see [`StagedNar`].
pub fn ingest_nar_staged<R: Read>(input: R, limits: &IngestLimits, blobs: &dyn BlobService) -> Result<StagedNar, IngestError> {
    let hashing = HashingReader { inner: input, hasher: Hasher::new(Algorithm::Sha256), count: 0 };
    let mut reader = Reader::new(hashing, limits.nar);
    let mut tree = PendingTree::new(limits.max_nodes);
    let ((), files) = pipeline::run(blobs, |pipeline| {
        parse(&mut reader, &mut tree, pipeline)?;
        Ok(((), tree.file_count()))
    })?;
    let HashingReader { hasher, count, .. } = reader.into_inner();
    let (root, directories) = tree.finish(&files)?;
    Ok(StagedNar { ingested: Ingested { root, nar_hash: hasher.finish(), nar_size: count }, directories })
}

/// Reads the archive's events into `tree`, handing file contents to the pipeline.
fn parse<R: Read>(reader: &mut Reader<R>, tree: &mut PendingTree, pipeline: &Pipeline<'_>) -> Result<(), IngestError> {
    // Open directories (node indices), innermost last, and the name of the entry being read.
    let mut open: Vec<usize> = Vec::new();
    let mut entry_name: Option<Vec<u8>> = None;
    loop {
        let (index, is_directory) = match reader.next()? {
            None => return Ok(()),
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
            Some(Event::Regular { executable, size }) => {
                let (index, slot) = tree.push_file()?;
                read_contents(reader, slot, executable, size, pipeline)?;
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
}

/// Fills `buffer` (already sized) from the current file's contents.
fn fill<R: Read>(reader: &mut Reader<R>, buffer: &mut [u8]) -> Result<(), ReadError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read_contents(&mut buffer[filled..])? {
            0 => return Err(ReadError::Truncated),
            n => filled += n,
        }
    }
    Ok(())
}

fn read_contents<R: Read>(
    reader: &mut Reader<R>,
    slot: usize,
    executable: bool,
    size: u64,
    pipeline: &Pipeline<'_>,
) -> Result<(), IngestError> {
    if size <= WHOLE_LIMIT {
        let mut data = pipeline.buffer();
        data.resize(size as usize, 0);
        fill(reader, &mut data)?;
        return pipeline.whole(slot, executable, data);
    }
    let stream = pipeline.stream(slot, executable)?;
    let mut remaining = size;
    while remaining > 0 {
        let mut data = pipeline.buffer();
        data.resize(remaining.min(CHUNK_SIZE as u64) as usize, 0);
        fill(reader, &mut data)?;
        remaining -= data.len() as u64;
        stream.send(data)?;
    }
    stream.end()
}
