//! Rendering a tree as a NAR, byte-for-byte as Nix would dump it, streaming, with read-ahead.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};

use nix_formats::hash::{Algorithm, Hash, HashingWriter};
use nix_formats::nar::{WriteError, Writer};

use crate::blob::{BlobError, BlobService};
use crate::directory_service::{Closure, DirectoryService, DirectoryServiceError};
use crate::digest::B3Digest;
use crate::node::Node;

/// Largest piece of a blob the read-ahead thread reads at once.
const CHUNK_SIZE: usize = 1 << 20;

/// Pieces (or small files) the read-ahead thread may have read before they are written: with
/// [`CHUNK_SIZE`], at most 16 MiB in flight.
const READ_AHEAD_CHUNKS: usize = 16;

/// Errors of rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A directory of the tree is missing or corrupt.
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    /// A blob of the tree is missing or unreadable.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Writing the NAR failed (the output, or a node the NAR format cannot hold).
    #[error(transparent)]
    Nar(#[from] WriteError),
}

/// Writes the NAR of the tree `root` to `out` and returns `out`.
///
/// The output is exactly what `nix-store --dump` writes for the materialised tree. Blob contents
/// are read ahead by a background thread (up to 16 MiB), so reading and writing overlap; `out`
/// receives large writes and needs no buffering. Directories are fetched first, in one walk of
/// the directory service.
pub fn render_nar<W: Write>(
    root: &Node,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
    out: W,
) -> Result<W, RenderError> {
    let closure = match root {
        Node::Directory { digest, size } => directories.closure(digest, *size)?,
        _ => Closure::default(),
    };
    let mut files = Vec::new();
    collect_files(root, &closure, &mut files)?;
    let mut writer = Writer::new(out);
    std::thread::scope(|scope| -> Result<(), RenderError> {
        let (chunks_tx, chunks_rx) = mpsc::sync_channel(READ_AHEAD_CHUNKS);
        let (spare_tx, spare_rx) = mpsc::channel();
        let files = &files;
        scope.spawn(move || read_ahead(files, blobs, chunks_tx, spare_rx));
        let mut contents = Contents { chunks: chunks_rx, spare: spare_tx, current: Vec::new(), position: 0, failure: None };
        let result = write_node(&mut writer, root, &closure, &mut contents);
        match (result, contents.failure.take()) {
            (_, Some(failure)) => Err(failure),
            (result, None) => result,
        }
        // Dropping `contents` closes the channel, which stops the read-ahead thread.
    })?;
    Ok(writer.finish()?)
}

/// The SHA-256 of the tree's NAR and the NAR's size (Nix's "NAR hash" and "NAR size").
pub fn nar_hash(root: &Node, blobs: &dyn BlobService, directories: &dyn DirectoryService) -> Result<(Hash, u64), RenderError> {
    let hashing = render_nar(root, blobs, directories, HashingWriter::new(io::sink(), Algorithm::Sha256))?;
    let (hash, size, _) = hashing.finish();
    Ok((hash, size))
}

/// The files of the tree in NAR order: (digest, size).
fn collect_files(node: &Node, closure: &Closure, out: &mut Vec<(B3Digest, u64)>) -> Result<(), RenderError> {
    match node {
        Node::File { digest, size, .. } => out.push((*digest, *size)),
        Node::Symlink { .. } => {}
        Node::Directory { digest, .. } => {
            for (_, child) in closure.get(digest)?.entries() {
                collect_files(child, closure, out)?;
            }
        }
    }
    Ok(())
}

fn write_node<W: Write>(writer: &mut Writer<W>, node: &Node, closure: &Closure, contents: &mut Contents) -> Result<(), RenderError> {
    match node {
        Node::File { size, executable, .. } => writer.regular(*executable, *size, contents)?,
        Node::Symlink { target } => writer.symlink(target.as_bytes())?,
        Node::Directory { digest, .. } => {
            writer.start_directory()?;
            for (name, child) in closure.get(digest)?.entries() {
                writer.entry(name)?;
                write_node(writer, child, closure, contents)?;
            }
            writer.end_directory()?;
        }
    }
    Ok(())
}

/// A piece of the file stream: bytes of the current file, or the end of a file.
enum Piece {
    Bytes(Vec<u8>),
    EndOfFile,
}

/// Reads the blobs of `files` in order, sending their bytes, each file closed by
/// [`Piece::EndOfFile`]. Stops at the first error (sent) or when the receiver is gone.
fn read_ahead(
    files: &[(B3Digest, u64)],
    blobs: &dyn BlobService,
    chunks: SyncSender<Result<Piece, BlobError>>,
    spare: Receiver<Vec<u8>>,
) {
    for (digest, size) in files {
        if let Err(e) = send_file(digest, *size, blobs, &chunks, &spare) {
            let _ = chunks.send(Err(e));
            return;
        }
        if chunks.send(Ok(Piece::EndOfFile)).is_err() {
            return;
        }
    }
}

fn send_file(
    digest: &B3Digest,
    size: u64,
    blobs: &dyn BlobService,
    chunks: &SyncSender<Result<Piece, BlobError>>,
    spare: &Receiver<Vec<u8>>,
) -> Result<(), BlobError> {
    if size == 0 {
        return Ok(());
    }
    let mut reader = blobs.open_read(digest)?.ok_or(BlobError::NotFound(*digest))?;
    let mut remaining = size;
    while remaining > 0 {
        let want = remaining.min(CHUNK_SIZE as u64) as usize;
        let mut buffer = spare.try_recv().unwrap_or_default();
        buffer.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => return Err(BlobError::SizeMismatch { digest: *digest, expected: size, actual: size - remaining + filled as u64 }),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BlobError::io(digest.to_hex(), e)),
            }
        }
        remaining -= want as u64;
        if chunks.send(Ok(Piece::Bytes(buffer))).is_err() {
            return Ok(());
        }
    }
    // The blob must end here.
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(BlobError::SizeMismatch { digest: *digest, expected: size, actual: size + 1 }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BlobError::io(digest.to_hex(), e)),
        }
    }
}

/// The consumer side: a [`Read`] of the current file's bytes from the read-ahead thread.
struct Contents {
    chunks: Receiver<Result<Piece, BlobError>>,
    spare: mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    /// The error the read-ahead thread reported, kept to return it as is.
    failure: Option<RenderError>,
}

impl Read for Contents {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(Piece::Bytes(bytes))) => {
                    let used = std::mem::replace(&mut self.current, bytes);
                    if used.capacity() > 0 {
                        let _ = self.spare.send(used);
                    }
                    self.position = 0;
                }
                Ok(Ok(Piece::EndOfFile)) => return Ok(0),
                Ok(Err(e)) => {
                    self.failure = Some(e.into());
                    return Err(io::Error::other("reading a blob failed"));
                }
                Err(_) => return Err(io::Error::other("read-ahead thread stopped")),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
