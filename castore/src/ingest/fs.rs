//! Ingest from a file system tree: walk it, then hash and store its files in parallel.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::{self, File, FileType};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::tree::{FileResult, Pending, PendingTree};
use super::{IngestError, IngestLimits};
use crate::blob::{BlobError, BlobService};
use crate::directory_service::DirectoryService;
use crate::node::{Node, SymlinkTarget};

/// Size of each thread's read buffer.
const READ_BUFFER_SIZE: usize = 1 << 20;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

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

/// Ingests the tree at `path` (not following a symlink at the root) and returns its root node.
///
/// Like a NAR of the tree: directory entries are sorted by name bytes, a regular file is
/// executable when its owner may execute it, a symlink keeps its raw target, and other file
/// types are refused ([`IngestError::UnsupportedFileType`]). The tree is walked first (names and
/// types only); then the files are read once each, in parallel (rayon's pool), hashed and copied
/// into the pool in the same pass. A file whose size changes meanwhile gives
/// [`IngestError::FileChanged`]. Blobs are flushed before the directories are stored.
pub fn ingest_path(
    path: &Path,
    limits: &IngestLimits,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<Node, IngestError> {
    let mut walk = Walk { tree: PendingTree::new(limits.max_nodes), files: Vec::new(), max_depth: limits.nar.max_depth };
    let root_type = fs::symlink_metadata(path).map_err(|e| io_error(path, e))?.file_type();
    let mut current = path.to_path_buf();
    walk.node(&mut current, root_type, 0)?;
    let Walk { tree, files, .. } = walk;

    let results: Vec<FileResult> =
        files.par_iter().map(|file| ingest_file(file, blobs)).collect::<Result<_, IngestError>>()?;
    blobs.flush()?;
    let (root, dirs) = tree.finish(&results)?;
    if !dirs.is_empty() {
        directories.put_many(&dirs)?;
    }
    Ok(root)
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
            let (index, slot) = self.tree.push_file()?;
            debug_assert_eq!(slot, self.files.len());
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

/// Reads one file into a blob, hashing and copying in one pass.
fn ingest_file(path: &Path, blobs: &dyn BlobService) -> Result<FileResult, IngestError> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    // Mode and size come from the open file, so they describe the bytes we read.
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(IngestError::FileChanged { path: path.to_path_buf() });
    }
    let executable = meta.permissions().mode() & 0o100 != 0;
    let expected = meta.len();
    let mut writer = if executable { blobs.executable_writer()? } else { blobs.writer()? };
    let copied = READ_BUFFER.with(|buffer| -> Result<u64, IngestError> {
        let mut buffer = buffer.borrow_mut();
        if buffer.is_empty() {
            buffer.resize(READ_BUFFER_SIZE, 0);
        }
        let mut copied = 0u64;
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(path, e)),
            };
            copied += n as u64;
            if copied > expected {
                return Err(IngestError::FileChanged { path: path.to_path_buf() });
            }
            writer.write_all(&buffer[..n]).map_err(|e| IngestError::Blob(BlobError::io(path, e)))?;
        }
        Ok(copied)
    })?;
    if copied != expected {
        return Err(IngestError::FileChanged { path: path.to_path_buf() });
    }
    let (digest, size) = writer.finish()?;
    Ok(FileResult { digest, size, executable })
}
