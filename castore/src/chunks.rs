//! The chunk index: content-defined chunks (FastCDC) of large blobs, for chunk-level sync.
//!
//! A blob of at least [`CHUNKING_THRESHOLD`] bytes is cut with FastCDC (the 2020 variant, chunks
//! of [`MIN_CHUNK`]..=[`MAX_CHUNK`] bytes, [`AVG_CHUNK`] on average) and each chunk named by its
//! BLAKE3. Chunks are not stored on their own — the blob is — so the index only records where
//! each chunk lies: a peer that has some chunks of a changed file need fetch only the others.
//! Cut points depend on the bytes alone, so an insertion shifts few chunks.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use fastcdc::v2020::FastCDC;
use rusqlite::{Connection, OptionalExtension};

use crate::blob::{BlobError, BlobService};
use crate::durability::Durability;
use crate::database::{self, DatabaseError};
use crate::digest::{B3Digest, DIGEST_LEN};
use crate::directory_service::{DirectoryService, DirectoryServiceError};
use crate::node::Node;

/// Smallest chunk (except a blob's last one).
pub const MIN_CHUNK: u32 = 64 * 1024;
/// Target average chunk size.
pub const AVG_CHUNK: u32 = 256 * 1024;
/// Largest chunk.
pub const MAX_CHUNK: u32 = 1024 * 1024;
/// Blobs smaller than this are not chunked (they are their own single chunk).
pub const CHUNKING_THRESHOLD: u64 = 1024 * 1024;

/// Bytes per chunk in the stored encoding: digest and little-endian u32 length.
const ENCODED_CHUNK_LEN: usize = DIGEST_LEN + 4;

/// One chunk of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// BLAKE3 of the chunk's bytes.
    pub digest: B3Digest,
    /// Where the chunk starts in the blob.
    pub offset: u64,
    /// Its length in bytes (1..=[`MAX_CHUNK`]).
    pub length: u32,
}

/// Errors of the chunk index.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// Reading a blob failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Walking a tree failed.
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    /// A stored chunk list is malformed.
    #[error("stored chunk list of blob {0} is corrupt")]
    Corrupt(B3Digest),
}

impl From<rusqlite::Error> for ChunkError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(DatabaseError::Sqlite(e))
    }
}

/// Cuts the bytes of `input` into FastCDC chunks (see the module documentation), reading it once
/// with a buffer of twice [`MAX_CHUNK`].
pub fn chunk_stream(mut input: impl Read) -> io::Result<Vec<Chunk>> {
    let max = MAX_CHUNK as usize;
    let mut buffer = vec![0u8; 2 * max];
    let (mut start, mut end, mut offset) = (0usize, 0usize, 0u64);
    let mut eof = false;
    let mut chunks = Vec::new();
    loop {
        if !eof && end - start < max {
            buffer.copy_within(start..end, 0);
            end -= start;
            start = 0;
            while !eof && end < buffer.len() {
                match input.read(&mut buffer[end..]) {
                    Ok(0) => eof = true,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if start == end {
            return Ok(chunks);
        }
        let window = &buffer[start..end];
        // With at least MAX_CHUNK bytes in the window (or the input's end), the cut is the one
        // FastCDC finds over the whole input.
        let (_, cut) = FastCDC::new(window, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK).cut(0, window.len());
        let cut = cut.clamp(1, window.len());
        chunks.push(Chunk { digest: B3Digest::of(&window[..cut]), offset, length: cut as u32 });
        offset += cut as u64;
        start += cut;
    }
}

fn encode(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.len() * ENCODED_CHUNK_LEN);
    for chunk in chunks {
        out.extend_from_slice(chunk.digest.as_bytes());
        out.extend_from_slice(&chunk.length.to_le_bytes());
    }
    out
}

fn decode(blob: &B3Digest, bytes: &[u8]) -> Result<Vec<Chunk>, ChunkError> {
    let records = bytes.chunks_exact(ENCODED_CHUNK_LEN);
    if !records.remainder().is_empty() {
        return Err(ChunkError::Corrupt(*blob));
    }
    let mut offset = 0u64;
    let mut chunks = Vec::with_capacity(records.len());
    for record in records {
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&record[..DIGEST_LEN]);
        let mut length = [0u8; 4];
        length.copy_from_slice(&record[DIGEST_LEN..]);
        let length = u32::from_le_bytes(length);
        if length == 0 || length > MAX_CHUNK {
            return Err(ChunkError::Corrupt(*blob));
        }
        chunks.push(Chunk { digest: B3Digest::from_bytes(digest), offset, length });
        offset += u64::from(length);
    }
    Ok(chunks)
}

/// Records the chunks of blobs.
pub trait ChunkIndex: Send + Sync {
    /// The recorded chunks of the blob, if any.
    fn get(&self, blob: &B3Digest) -> Result<Option<Vec<Chunk>>, ChunkError>;

    /// Records the chunks of the blob (replacing a previous record).
    fn put(&self, blob: &B3Digest, chunks: &[Chunk]) -> Result<(), ChunkError>;

    /// The blob's chunks: recorded ones, or computed from the blob (and recorded, if the blob is
    /// at least [`CHUNKING_THRESHOLD`] bytes).
    fn chunks(&self, blob: &B3Digest, blobs: &dyn BlobService) -> Result<Vec<Chunk>, ChunkError> {
        if let Some(chunks) = self.get(blob)? {
            return Ok(chunks);
        }
        let reader = blobs.open_read(blob)?.ok_or(BlobError::NotFound(*blob))?;
        let chunks = chunk_stream(reader).map_err(|e| BlobError::io(blob.to_hex(), e))?;
        if chunks.iter().map(|c| u64::from(c.length)).sum::<u64>() >= CHUNKING_THRESHOLD {
            self.put(blob, &chunks)?;
        }
        Ok(chunks)
    }

    /// Records the chunks of every blob of at least [`CHUNKING_THRESHOLD`] bytes in the tree
    /// `root` that has none yet; returns how many blobs were indexed.
    fn index_tree(&self, root: &Node, blobs: &dyn BlobService, directories: &dyn DirectoryService) -> Result<usize, ChunkError> {
        let mut large = HashSet::new();
        match root {
            Node::File { digest, size, .. } if *size >= CHUNKING_THRESHOLD => {
                large.insert(*digest);
            }
            Node::Directory { digest, size } => {
                for (_, directory) in directories.closure(digest, *size)?.iter() {
                    for (_, node) in directory.entries() {
                        if let Node::File { digest, size, .. } = node {
                            if *size >= CHUNKING_THRESHOLD {
                                large.insert(*digest);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        let mut indexed = 0;
        for digest in large {
            if self.get(&digest)?.is_none() {
                self.chunks(&digest, blobs)?;
                indexed += 1;
            }
        }
        Ok(indexed)
    }
}

/// The chunk index in the castore's SQLite database (table `chunks`).
#[derive(Debug)]
pub struct SqliteChunkIndex {
    conn: Mutex<Connection>,
}

impl SqliteChunkIndex {
    /// Opens (creating if needed) the database at `path`, with synced commits.
    pub fn open(path: &Path) -> Result<Self, ChunkError> {
        Self::open_with(path, Durability::Synced)
    }

    /// Opens (creating if needed) the database at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, ChunkError> {
        Ok(Self { conn: Mutex::new(database::open(path, durability)?) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ChunkIndex for SqliteChunkIndex {
    fn get(&self, blob: &B3Digest) -> Result<Option<Vec<Chunk>>, ChunkError> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached("SELECT chunks FROM chunks WHERE blob = ?1")?;
        let bytes: Option<Vec<u8>> = statement.query_row([blob.as_bytes().as_slice()], |row| row.get(0)).optional()?;
        bytes.map(|b| decode(blob, &b)).transpose()
    }

    fn put(&self, blob: &B3Digest, chunks: &[Chunk]) -> Result<(), ChunkError> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached("INSERT OR REPLACE INTO chunks (blob, chunks) VALUES (?1, ?2)")?;
        statement.execute(rusqlite::params![blob.as_bytes().as_slice(), encode(chunks)])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    /// Deterministic pseudo-random bytes.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// A reader that returns at most `step` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_cuts_equal_whole_input_cuts() {
        let data = noise(5 * 1024 * 1024 + 12345, 1);
        let expected: Vec<(u64, u32)> = FastCDC::new(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .map(|c| (c.offset as u64, c.length as u32))
            .collect();
        for step in [usize::MAX, 4096, 777_777] {
            let chunks = chunk_stream(Trickle(&data, step)).unwrap();
            let got: Vec<(u64, u32)> = chunks.iter().map(|c| (c.offset, c.length)).collect();
            assert_eq!(got, expected, "step {step}");
            for c in &chunks {
                let start = c.offset as usize;
                assert_eq!(c.digest, B3Digest::of(&data[start..start + c.length as usize]));
            }
        }
        let average = data.len() / expected.len();
        assert!((128 * 1024..=512 * 1024).contains(&average), "average chunk {average}");
    }

    #[test]
    fn insertion_shifts_few_chunks() {
        let data = noise(8 * 1024 * 1024, 2);
        let mut edited = data[..3_000_000].to_vec();
        edited.extend_from_slice(b"inserted bytes");
        edited.extend_from_slice(&data[3_000_000..]);
        let a: HashSet<B3Digest> = chunk_stream(&data[..]).unwrap().iter().map(|c| c.digest).collect();
        let b = chunk_stream(&edited[..]).unwrap();
        let new = b.iter().filter(|c| !a.contains(&c.digest)).count();
        assert!(new <= 2, "{new} of {} chunks changed", b.len());
    }

    #[test]
    fn empty_and_small_inputs() {
        assert!(chunk_stream(&b""[..]).unwrap().is_empty());
        let chunks = chunk_stream(&b"abc"[..]).unwrap();
        assert_eq!(chunks, [Chunk { digest: B3Digest::of(b"abc"), offset: 0, length: 3 }]);
    }

    #[test]
    fn encoding_round_trip_and_corruption() {
        let data = noise(3 * 1024 * 1024, 3);
        let chunks = chunk_stream(&data[..]).unwrap();
        let blob = B3Digest::of(&data);
        assert_eq!(decode(&blob, &encode(&chunks)).unwrap(), chunks);
        assert!(decode(&blob, &[0u8; 35]).is_err());
        assert!(decode(&blob, &[0u8; 36]).is_err()); // zero length
    }
}
