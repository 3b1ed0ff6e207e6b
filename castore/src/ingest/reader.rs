//! The reading thread of a file system ingest: it opens and reads the tree's files in NAR order
//! and sends their bytes to the thread that hashes the NAR (and hands the bytes on to the blob
//! workers), so reading and SHA-256 run on different cores.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use super::pipeline::{Buffers, Stream, CHUNK_SIZE, WHOLE_LIMIT};
use super::IngestError;

/// Messages waiting between the reading thread and the hashing thread (each at most
/// [`WHOLE_LIMIT`] bytes).
pub(crate) const QUEUE: usize = 16;

/// What the reading thread sends, file after file in NAR order.
pub(crate) enum Contents {
    /// A whole file of at most [`WHOLE_LIMIT`] bytes.
    Whole { executable: bool, data: Vec<u8> },
    /// A larger file: exactly `size` bytes follow as [`Contents::Piece`]s.
    Large { executable: bool, size: u64 },
    /// The next piece of the current large file.
    Piece(Vec<u8>),
    /// Reading failed; nothing follows.
    Failed(IngestError),
}

fn io_error(path: &Path, source: io::Error) -> IngestError {
    IngestError::Io { path: path.to_path_buf(), source }
}

/// Reads `files` in order and sends their contents to `out`; stops early when the receiver is
/// gone (the hashing thread failed and reports why).
pub(crate) fn read_files(files: &[PathBuf], buffers: Buffers<'_>, out: SyncSender<Contents>) {
    for path in files {
        if let Err(error) = read_file(path, buffers, &out) {
            let _ = out.send(Contents::Failed(error));
            return;
        }
    }
}

/// The receiver went away: the hashing thread stopped.
const STOPPED: IngestError = IngestError::Internal("NAR hashing thread stopped");

fn send(out: &SyncSender<Contents>, contents: Contents) -> Result<(), IngestError> {
    out.send(contents).map_err(|_| STOPPED)
}

fn read_file(path: &Path, buffers: Buffers<'_>, out: &SyncSender<Contents>) -> Result<(), IngestError> {
    // Not following symlinks: a file replaced by a symlink since the walk is an error, not a
    // way to read another file.
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => IngestError::FileChanged { path: path.to_path_buf() },
            _ => io_error(path, e),
        })?;
    // Mode and size come from the open file, so they describe the bytes we read.
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(IngestError::FileChanged { path: path.to_path_buf() });
    }
    let executable = meta.permissions().mode() & 0o100 != 0;
    let size = meta.len();
    if size <= WHOLE_LIMIT {
        let mut data = buffers.get();
        // Room for the whole file and the one byte that shows it grew: `read_to_end` would
        // otherwise double the buffer several times (a copy and fresh pages each).
        data.reserve_exact(usize::try_from(size).unwrap_or(usize::MAX).saturating_add(1));
        (&mut file).take(size + 1).read_to_end(&mut data).map_err(|e| io_error(path, e))?;
        if data.len() as u64 != size {
            return Err(IngestError::FileChanged { path: path.to_path_buf() });
        }
        return send(out, Contents::Whole { executable, data });
    }
    send(out, Contents::Large { executable, size })?;
    let mut remaining = size;
    while remaining > 0 {
        let mut piece = buffers.get();
        piece.resize(CHUNK_SIZE.min(usize::try_from(remaining).unwrap_or(CHUNK_SIZE)), 0);
        let n = read_full(&mut file, &mut piece).map_err(|e| io_error(path, e))?;
        if n == 0 {
            return Err(IngestError::FileChanged { path: path.to_path_buf() });
        }
        piece.truncate(n);
        remaining -= n as u64;
        send(out, Contents::Piece(piece))?;
    }
    // The file must end where its size said.
    if read_full(&mut file, &mut [0u8; 1]).map_err(|e| io_error(path, e))? != 0 {
        return Err(IngestError::FileChanged { path: path.to_path_buf() });
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A large file's pieces as a [`Read`] for the NAR writer; each piece, once read, goes on to the
/// file's blob worker. Yields exactly the file's size, then the end.
pub(crate) struct Pieces<'r> {
    contents: &'r Receiver<Contents>,
    stream: Stream,
    piece: Vec<u8>,
    position: usize,
    remaining: u64,
    /// Why the reading thread stopped, if it did.
    pub failure: Option<IngestError>,
}

impl<'r> Pieces<'r> {
    /// The pieces of a file of `size` bytes, received from `contents` and sent on to `stream`.
    pub fn new(contents: &'r Receiver<Contents>, stream: Stream, size: u64) -> Self {
        Self { contents, stream, piece: Vec::new(), position: 0, remaining: size, failure: None }
    }

    /// Sends the last piece and ends the stream.
    pub fn finish(self) -> Result<(), IngestError> {
        if !self.piece.is_empty() {
            self.stream.send(self.piece)?;
        }
        self.stream.end()
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position == self.piece.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            let next = match self.contents.recv() {
                Ok(Contents::Piece(next)) if !next.is_empty() && next.len() as u64 <= self.remaining => next,
                Ok(Contents::Failed(error)) => {
                    self.failure = Some(error);
                    return Err(io::Error::other("reading thread failed"));
                }
                Ok(_) => {
                    self.failure = Some(IngestError::Internal("reading thread out of step"));
                    return Err(io::Error::other("reading thread out of step"));
                }
                Err(_) => {
                    self.failure = Some(IngestError::Internal("reading thread stopped"));
                    return Err(io::Error::other("reading thread stopped"));
                }
            };
            self.remaining -= next.len() as u64;
            let done = std::mem::replace(&mut self.piece, next);
            self.position = 0;
            if !done.is_empty() {
                self.stream.send(done).map_err(io::Error::other)?;
            }
        }
        let n = buf.len().min(self.piece.len() - self.position);
        buf[..n].copy_from_slice(&self.piece[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use std::sync::{mpsc, Mutex};

    use super::*;

    /// Runs `read_files` on `files` and collects what it sends.
    fn read(files: &[PathBuf]) -> Vec<Contents> {
        let (_spare, recycled) = mpsc::channel();
        let recycled = Mutex::new(recycled);
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        std::thread::scope(|scope| {
            scope.spawn(|| read_files(files, Buffers(&recycled), sender));
            receiver.iter().collect()
        })
    }

    #[test]
    fn sends_whole_and_large_files_in_order_then_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        let large = dir.path().join("large");
        let large_bytes: Vec<u8> = (0..WHOLE_LIMIT as usize + CHUNK_SIZE + 3).map(|i| (i % 251) as u8).collect();
        std::fs::write(&large, &large_bytes).unwrap();
        std::fs::set_permissions(&large, std::fs::Permissions::from_mode(0o755)).unwrap();
        let missing = dir.path().join("missing");
        let sent = read(&[small, large, missing.clone(), dir.path().join("never read")]);
        let mut sent = sent.into_iter();
        assert!(matches!(sent.next(), Some(Contents::Whole { executable: false, data }) if data == b"hello"));
        let Some(Contents::Large { executable: true, size }) = sent.next() else { panic!("expected the large file") };
        assert_eq!(size, large_bytes.len() as u64);
        let mut got = Vec::new();
        while got.len() < large_bytes.len() {
            let Some(Contents::Piece(piece)) = sent.next() else { panic!("expected a piece") };
            assert!(!piece.is_empty() && piece.len() <= CHUNK_SIZE);
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, large_bytes);
        let Some(Contents::Failed(IngestError::Io { path, .. })) = sent.next() else { panic!("expected the failure") };
        assert_eq!(path, missing);
        assert!(sent.next().is_none(), "nothing follows a failure");
    }

    #[test]
    fn a_file_whose_contents_differ_from_its_size_is_refused() {
        // procfs files claim size 0 and yield bytes.
        let proc_file = PathBuf::from("/proc/self/status");
        if !proc_file.exists() {
            return;
        }
        let sent = read(std::slice::from_ref(&proc_file));
        assert!(matches!(&sent[..], [Contents::Failed(IngestError::FileChanged { path })] if *path == proc_file));
    }

    #[test]
    fn stops_when_the_hashing_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..QUEUE * 4)
            .map(|i| {
                let path = dir.path().join(format!("f{i}"));
                std::fs::write(&path, [i as u8]).unwrap();
                path
            })
            .collect();
        let (_spare, recycled) = mpsc::channel();
        let recycled = Mutex::new(recycled);
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        drop(receiver);
        // Returns (instead of blocking on a full queue) once nobody receives.
        read_files(&files, Buffers(&recycled), sender);
    }

    #[test]
    fn pieces_report_the_reading_threads_failure() {
        use nix_formats::hash::{Algorithm, HashingWriter};
        use nix_formats::nar::Writer;

        let (stream, _receiving_end) = Stream::for_test();
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        sender.send(Contents::Piece(vec![1; 10])).unwrap();
        sender.send(Contents::Failed(IngestError::Internal("disk on fire"))).unwrap();
        let mut pieces = Pieces::new(&receiver, stream, 20);
        let mut nar = Writer::new(HashingWriter::new(io::sink(), Algorithm::Sha256));
        assert!(nar.regular(false, 20, &mut pieces).is_err());
        assert!(matches!(pieces.failure, Some(IngestError::Internal("disk on fire"))));
    }
}
