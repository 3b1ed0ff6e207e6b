//! Ingest from a file system tree: walk it, then read each file once, in NAR order, while workers
//! hash and store the contents.

use std::ffi::OsString;
use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix_formats::hash::{Algorithm, HashingWriter};
use nix_formats::nar::{WriteError, Writer};

use super::pipeline::{self, Pipeline, Stream, CHUNK_SIZE, WHOLE_LIMIT};
use super::tree::{Pending, PendingTree};
use super::{IngestError, IngestLimits, Ingested};
use crate::blob::BlobService;
use crate::directory_service::DirectoryService;
use crate::node::SymlinkTarget;

/// The NAR writer that hashes the tree's archive.
type NarHasher = Writer<HashingWriter<io::Sink>>;

fn io_error(path: &Path, source: io::Error) -> IngestError {
    IngestError::Io { path: path.to_path_buf(), source }
}

fn unsupported_kind(file_type: &FileType) -> &'static str {
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "unknown"
    }
}

/// Ingests the tree at `path` (not following a symlink at the root); returns its root node and
/// its NAR's SHA-256 and size.
///
/// Like a NAR of the tree: directory entries are sorted by name bytes, a regular file is
/// executable when its owner may execute it, a symlink keeps its raw target, and other file
/// types are refused ([`IngestError::UnsupportedFileType`]). The tree is walked first (names and
/// types only); then each file is read once, in NAR order, hashed into the NAR's SHA-256, and
/// handed to worker threads that hash it with BLAKE3 and store it. A file whose type or size
/// changes meanwhile gives [`IngestError::FileChanged`]. Blobs are flushed before the directories
/// are stored.
pub fn ingest_path(
    path: &Path,
    limits: &IngestLimits,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<Ingested, IngestError> {
    let mut walk = Walk { tree: PendingTree::new(limits.max_nodes), files: Vec::new(), max_depth: limits.nar.max_depth };
    let root_type = fs::symlink_metadata(path).map_err(|e| io_error(path, e))?.file_type();
    let mut current = path.to_path_buf();
    walk.node(&mut current, root_type, 0)?;
    let Walk { tree, files, .. } = walk;

    let ((nar_hash, nar_size), results) = pipeline::run(blobs, |pipeline| {
        let mut nar = Writer::new(HashingWriter::new(io::sink(), Algorithm::Sha256));
        emit(&tree, 0, &files, &mut nar, pipeline)?;
        let (hash, size, _) = nar.finish()?.finish();
        Ok(((hash, size), tree.file_count()))
    })?;
    blobs.flush()?;
    let (root, dirs) = tree.finish(&results)?;
    if !dirs.is_empty() {
        directories.put_many(&dirs)?;
    }
    Ok(Ingested { root, nar_hash, nar_size })
}

/// The walk's state: the tree's shape, and the files to read (indexed by slot).
struct Walk {
    tree: PendingTree,
    files: Vec<PathBuf>,
    max_depth: usize,
}

impl Walk {
    /// Records the node at `path` and everything below it; returns its index.
    fn node(&mut self, path: &mut PathBuf, file_type: FileType, depth: usize) -> Result<usize, IngestError> {
        if file_type.is_file() {
            let (index, _slot) = self.tree.push_file()?;
            self.files.push(path.clone());
            Ok(index)
        } else if file_type.is_symlink() {
            let target = fs::read_link(&*path).map_err(|e| io_error(path, e))?;
            let target = SymlinkTarget::new(target.into_os_string().into_vec())
                .map_err(|source| IngestError::InvalidSymlinkTarget { path: path.clone(), source })?;
            self.tree.push(Pending::Symlink(target))
        } else if file_type.is_dir() {
            if depth >= self.max_depth {
                return Err(IngestError::TooDeep { path: path.clone(), max: self.max_depth });
            }
            let mut entries: Vec<(OsString, FileType)> = Vec::new();
            for entry in fs::read_dir(&*path).map_err(|e| io_error(path, e))? {
                let entry = entry.map_err(|e| io_error(path, e))?;
                // The type from the directory listing where the file system provides it (no stat).
                let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
                entries.push((entry.file_name(), file_type));
            }
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let index = self.tree.push(Pending::Directory(Vec::with_capacity(entries.len())))?;
            for (name, file_type) in entries {
                path.push(&name);
                let child = self.node(path, file_type, depth + 1);
                path.pop();
                self.tree.add_entry(index, name.into_vec(), child?);
            }
            Ok(index)
        } else {
            Err(IngestError::UnsupportedFileType { path: path.clone(), kind: unsupported_kind(&file_type) })
        }
    }
}

/// Writes node `index` into the NAR hasher, reading files and handing them to the pipeline.
fn emit(tree: &PendingTree, index: usize, files: &[PathBuf], nar: &mut NarHasher, pipeline: &Pipeline<'_>) -> Result<(), IngestError> {
    match tree.get(index) {
        Some(Pending::File { slot }) => {
            let path = files.get(*slot).ok_or(IngestError::Internal("file slot without path"))?;
            read_file(path, *slot, nar, pipeline)
        }
        Some(Pending::Symlink(target)) => Ok(nar.symlink(target.as_bytes())?),
        Some(Pending::Directory(entries)) => {
            nar.start_directory()?;
            for (name, child) in entries {
                nar.entry(name)?;
                emit(tree, *child, files, nar, pipeline)?;
            }
            Ok(nar.end_directory()?)
        }
        None => Err(IngestError::Internal("missing tree node")),
    }
}

/// Reads one file: into the NAR hash, and to the workers.
fn read_file(path: &Path, slot: usize, nar: &mut NarHasher, pipeline: &Pipeline<'_>) -> Result<(), IngestError> {
    // Not following symlinks: a file replaced by a symlink since the walk is an error, not a
    // way to read another file.
    let file = fs::OpenOptions::new()
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
        let mut data = pipeline.buffer();
        file.take(size + 1).read_to_end(&mut data).map_err(|e| io_error(path, e))?;
        if data.len() as u64 != size {
            return Err(IngestError::FileChanged { path: path.to_path_buf() });
        }
        nar.regular_bytes(executable, &data)?;
        return pipeline.whole(slot, executable, data);
    }
    let stream = pipeline.stream(slot, executable)?;
    let mut tee = Tee { file, stream, pipeline, chunk: Vec::new(), position: 0 };
    nar.regular(executable, size, &mut tee).map_err(|e| match e {
        WriteError::Contents(source) => io_error(path, source),
        WriteError::ContentsTooShort { .. } | WriteError::ContentsTooLong { .. } => {
            IngestError::FileChanged { path: path.to_path_buf() }
        }
        other => other.into(),
    })?;
    let Tee { stream, chunk, .. } = tee;
    if !chunk.is_empty() {
        stream.send(chunk)?;
    }
    stream.end()
}

/// Reads a file in [`CHUNK_SIZE`] pieces, serving them to the NAR writer and then sending them
/// to the file's worker.
struct Tee<'p, 'a> {
    file: File,
    stream: Stream,
    pipeline: &'p Pipeline<'a>,
    chunk: Vec<u8>,
    position: usize,
}

impl Read for Tee<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position == self.chunk.len() {
            let mut next = self.pipeline.buffer();
            next.resize(CHUNK_SIZE, 0);
            let mut filled = 0;
            while filled < next.len() {
                match self.file.read(&mut next[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            next.truncate(filled);
            let done = std::mem::replace(&mut self.chunk, next);
            self.position = 0;
            if !done.is_empty() {
                self.stream.send(done).map_err(io::Error::other)?;
            }
        }
        let n = buf.len().min(self.chunk.len() - self.position);
        buf[..n].copy_from_slice(&self.chunk[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
