//! Ingest from a file system tree: walk it, then read each file once, in NAR order, on a reading
//! thread (see `reader`), while the calling thread hashes the NAR and workers hash and store the
//! contents.

use std::ffi::OsString;
use std::fs::{self, FileType};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use nix_formats::hash::{Algorithm, HashingWriter};
use nix_formats::nar::{WriteError, Writer};

use super::pipeline::{self, Pipeline};
use super::reader::{self, Contents, Pieces};
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
/// types only); then a reading thread reads each file once, in NAR order, and the calling thread
/// hashes it into the NAR's SHA-256 and hands it to worker threads that hash it with BLAKE3 and
/// store it. A file whose type or size
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
        let buffers = pipeline.buffers();
        let (sender, contents) = mpsc::sync_channel(reader::QUEUE);
        std::thread::scope(|scope| {
            scope.spawn(|| reader::read_files(&files, buffers, sender));
            let mut nar = Writer::new(HashingWriter::new(io::sink(), Algorithm::Sha256));
            // `contents` is dropped when this returns, which stops the reader early on errors.
            let emitted = emit(&tree, 0, &contents, &mut nar, pipeline);
            drop(contents);
            emitted?;
            let (hash, size, _) = nar.finish()?.finish();
            Ok(((hash, size), tree.file_count()))
        })
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

/// Writes node `index` into the NAR hasher, taking file contents from the reading thread in
/// NAR order and handing them to the pipeline.
fn emit(
    tree: &PendingTree,
    index: usize,
    contents: &Receiver<Contents>,
    nar: &mut NarHasher,
    pipeline: &Pipeline<'_>,
) -> Result<(), IngestError> {
    match tree.get(index) {
        Some(Pending::File { slot }) => file(*slot, contents, nar, pipeline),
        Some(Pending::Symlink(target)) => Ok(nar.symlink(target.as_bytes())?),
        Some(Pending::Directory(entries)) => {
            nar.start_directory()?;
            for (name, child) in entries {
                nar.entry(name)?;
                emit(tree, *child, contents, nar, pipeline)?;
            }
            Ok(nar.end_directory()?)
        }
        None => Err(IngestError::Internal("missing tree node")),
    }
}

/// The next file from the reading thread: into the NAR hash, and to the workers.
fn file(slot: usize, contents: &Receiver<Contents>, nar: &mut NarHasher, pipeline: &Pipeline<'_>) -> Result<(), IngestError> {
    match contents.recv() {
        Ok(Contents::Whole { executable, data }) => {
            nar.regular_bytes(executable, &data)?;
            pipeline.whole(slot, executable, data)
        }
        Ok(Contents::Large { executable, size }) => {
            let mut pieces = Pieces::new(contents, pipeline.stream(slot, executable)?, size);
            match nar.regular(executable, size, &mut pieces) {
                Ok(()) => pieces.finish(),
                Err(e) => Err(pieces.failure.take().unwrap_or_else(|| match e {
                    WriteError::Contents(_) => IngestError::Internal("blob worker stopped"),
                    other => other.into(),
                })),
            }
        }
        Ok(Contents::Failed(error)) => Err(error),
        Ok(Contents::Piece(_)) => Err(IngestError::Internal("reading thread out of step")),
        Err(_) => Err(IngestError::Internal("reading thread stopped")),
    }
}
