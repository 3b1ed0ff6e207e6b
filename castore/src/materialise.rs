//! Materialisation: a tree written out as files, its regular files hardlinked from the blob pool.
//!
//! The result is canonical like a Nix store path: files `0444` (`0555` when executable), which
//! they get from their pool inodes; directories `0555`; mtime 1 on everything, symlinks included;
//! no setuid, setgid or sticky bits. Files whose blob has no local file, that live on another
//! file system (`EXDEV`), or whose pool inode has reached the file system's link limit
//! (`EMLINK`), are copied instead.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::blob::{BlobError, BlobService};
use crate::canonical;
use crate::durability::{self, Durability};
use crate::digest::B3Digest;
use crate::directory_service::{Closure, DirectoryService, DirectoryServiceError};
use crate::node::Node;

/// Errors of materialisation.
#[derive(Debug, thiserror::Error)]
pub enum MaterialiseError {
    /// The destination exists already.
    #[error("'{}' exists already", .0.display())]
    DestinationExists(PathBuf),
    /// The destination has no parent directory or no file name.
    #[error("'{}' cannot be a destination", .0.display())]
    InvalidDestination(PathBuf),
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A blob is missing or unreadable.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A directory is missing or corrupt.
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
}

fn io_error(path: &Path, source: io::Error) -> MaterialiseError {
    MaterialiseError::Io { path: path.to_path_buf(), source }
}

/// What to create, gathered before anything is: directories in pre-order, then files and symlinks.
#[derive(Default)]
struct Plan<'a> {
    directories: Vec<PathBuf>,
    files: Vec<(PathBuf, B3Digest, u64, bool)>,
    symlinks: Vec<(PathBuf, &'a [u8])>,
}

impl<'a> Plan<'a> {
    fn add(&mut self, node: &'a Node, path: PathBuf, closure: &'a Closure) -> Result<(), MaterialiseError> {
        match node {
            Node::File { digest, size, executable } => self.files.push((path, *digest, *size, *executable)),
            Node::Symlink { target } => self.symlinks.push((path, target.as_bytes())),
            Node::Directory { digest, .. } => {
                self.directories.push(path.clone());
                for (name, child) in closure.get(digest)?.entries() {
                    self.add(child, path.join(std::ffi::OsStr::from_bytes(name)), closure)?;
                }
            }
        }
        Ok(())
    }
}

/// Creates the tree `root` at `dest`, which must not exist (its parent must). Not atomic: after
/// an error a partial tree may remain (see [`materialise_atomically`]).
pub fn materialise(
    root: &Node,
    dest: &Path,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<(), MaterialiseError> {
    materialise_returning_directories(root, dest, blobs, directories).map(drop)
}

/// What [`materialise`] created that is not durable yet: every directory, and the copied files.
struct Created {
    directories: Vec<PathBuf>,
    copies: Vec<PathBuf>,
}

/// [`materialise`], returning what it created (for syncing).
fn materialise_returning_directories(
    root: &Node,
    dest: &Path,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
) -> Result<Created, MaterialiseError> {
    let closure = match root {
        Node::Directory { digest, size } => directories.closure(digest, *size)?,
        _ => Closure::default(),
    };
    if fs::symlink_metadata(dest).is_ok() {
        return Err(MaterialiseError::DestinationExists(dest.to_path_buf()));
    }
    let mut plan = Plan::default();
    plan.add(root, dest.to_path_buf(), &closure)?;

    let mut builder = DirBuilder::new();
    builder.mode(0o755);
    for dir in &plan.directories {
        builder.create(dir).map_err(|e| io_error(dir, e))?;
    }
    let copied: Vec<bool> = plan
        .files
        .par_iter()
        .map(|(path, digest, size, executable)| place_file(path, digest, *size, *executable, blobs))
        .collect::<Result<_, MaterialiseError>>()?;
    let copies =
        plan.files.iter().zip(copied).filter(|(_, copied)| *copied).map(|((path, ..), _)| path.clone()).collect();
    for (path, target) in &plan.symlinks {
        place_symlink(path, target)?;
    }
    // Last, when nothing will be added to them: read-only and mtime 1, innermost first.
    plan.directories.par_iter().rev().try_for_each(|dir| {
        fs::set_permissions(dir, fs::Permissions::from_mode(canonical::DIRECTORY_MODE))
            .and_then(|()| File::open(dir))
            .and_then(|handle| handle.set_times(fs::FileTimes::new().set_modified(canonical::mtime())))
            .map_err(|e| io_error(dir, e))
    })?;
    Ok(Created { directories: plan.directories, copies })
}

/// Makes the symlink `path` to `target` with the canonical mtime (removing it again if that
/// cannot be set); [`MaterialiseError::DestinationExists`] if `path` exists.
fn place_symlink(path: &Path, target: &[u8]) -> Result<(), MaterialiseError> {
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).map_err(|e| placing_error(path, e))?;
    set_symlink_mtime(path).inspect_err(|_| {
        let _ = fs::remove_file(path);
    })
}

/// The error of creating `path`: [`MaterialiseError::DestinationExists`] when something is there.
fn placing_error(path: &Path, e: io::Error) -> MaterialiseError {
    if e.kind() == io::ErrorKind::AlreadyExists {
        MaterialiseError::DestinationExists(path.to_path_buf())
    } else {
        io_error(path, e)
    }
}

fn set_symlink_mtime(path: &Path) -> Result<(), MaterialiseError> {
    use rustix::fs::{utimensat, AtFlags, Timestamps, CWD, UTIME_OMIT};
    let times = Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
        last_modification: rustix::fs::Timespec { tv_sec: canonical::MTIME_SECS as i64, tv_nsec: 0 },
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_error(path, e.into()))
}

/// Hardlinks the blob's pool file to `path`, or copies it when linking is impossible; returns
/// whether it copied.
fn place_file(path: &Path, digest: &B3Digest, size: u64, executable: bool, blobs: &dyn BlobService) -> Result<bool, MaterialiseError> {
    if link_blob(path, digest, executable, blobs)? {
        return Ok(false);
    }
    copy_blob(path, digest, size, executable, blobs)?;
    Ok(true)
}

/// Hardlinks the blob's pool file to `path`; `false` when the blob has no pool file or linking
/// is impossible (the caller copies it then); [`MaterialiseError::DestinationExists`] if `path`
/// exists.
fn link_blob(path: &Path, digest: &B3Digest, executable: bool, blobs: &dyn BlobService) -> Result<bool, MaterialiseError> {
    // The usual place first, without looking it up: one system call for most files.
    if let Some(source) = blobs.link_path_hint(digest, executable) {
        match fs::hard_link(&source, path) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_link_impossible(&e) => {}
            Err(e) => return Err(placing_error(path, e)),
        }
    }
    if let Some(source) = blobs.path_for_link(digest, executable)? {
        match fs::hard_link(&source, path) {
            Ok(()) => return Ok(true),
            Err(e) if is_link_impossible(&e) => {}
            Err(e) => return Err(placing_error(path, e)),
        }
    }
    Ok(false)
}

/// Errors after which a copy can stand in for a hardlink: other file system, link limit
/// reached, links refused (e.g. `fs.protected_hardlinks`).
fn is_link_impossible(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    [rustix::io::Errno::XDEV, rustix::io::Errno::MLINK, rustix::io::Errno::PERM]
        .iter()
        .any(|errno| code == Some(errno.raw_os_error()))
}

fn copy_blob(path: &Path, digest: &B3Digest, size: u64, executable: bool, blobs: &dyn BlobService) -> Result<(), MaterialiseError> {
    let mut reader = blobs.open_read(digest)?.ok_or(BlobError::NotFound(*digest))?;
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| io_error(path, e))?;
    let copied = io::copy(&mut reader.by_ref().take(size), &mut file).map_err(|e| io_error(path, e))?;
    let mut probe = [0u8; 1];
    let extra = reader.read(&mut probe).map_err(|e| io_error(path, e))?;
    if copied != size || extra != 0 {
        return Err(BlobError::SizeMismatch { digest: *digest, expected: size, actual: copied + extra as u64 }.into());
    }
    file.flush().map_err(|e| io_error(path, e))?;
    file.set_permissions(fs::Permissions::from_mode(canonical::file_mode(executable)))
        .and_then(|()| file.set_times(fs::FileTimes::new().set_modified(canonical::mtime())))
        .map_err(|e| io_error(path, e))
}

/// Materialises `root` at `dest` atomically: a file is hardlinked from its pool file, and a
/// symlink made, right at `dest` (either appears whole); a tree is built at `dest.tmp-…` beside it, made
/// durable with [`Durability::Synced`] (copied files and every new directory; linked files are
/// durable in the pool already), then renamed to `dest` without replacing anything, and the parent directory is synced.
/// After a crash, `dest` is either absent or complete. On error the temporary tree is removed;
/// [`MaterialiseError::DestinationExists`] if `dest` exists (before or by a concurrent rename).
pub fn materialise_atomically(
    root: &Node,
    dest: &Path,
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
    durability: Durability,
) -> Result<(), MaterialiseError> {
    materialise_many_atomically(&[(root, dest)], blobs, directories, durability)
}

/// [`materialise_atomically`] for several trees with one barrier: every tree is built beside
/// its destination, all are synced together, then each is renamed into place and each parent
/// directory synced once. Stops at the first error: trees renamed before it stay (each is
/// complete), the other temporary trees are removed.
pub fn materialise_many_atomically(
    items: &[(&Node, &Path)],
    blobs: &dyn BlobService,
    directories: &dyn DirectoryService,
    durability: Durability,
) -> Result<(), MaterialiseError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Temporary trees and their destinations; a temporary is cleared once renamed.
    let mut pending: Vec<(PathBuf, &Path)> = Vec::with_capacity(items.len());
    let result = (|| {
        let mut to_sync = Vec::new();
        let mut parents: Vec<&Path> = Vec::new();
        for &(root, dest) in items {
            let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
                return Err(MaterialiseError::InvalidDestination(dest.to_path_buf()));
            };
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            if !parents.contains(&parent) {
                parents.push(parent);
            }
            // A file or symlink needs no temporary: a hardlink to a complete pool file, or a
            // symlink, appears whole under its name at once (and refuses to replace anything).
            if place_directly(root, dest, blobs)? {
                continue;
            }
            if fs::symlink_metadata(dest).is_ok() {
                return Err(MaterialiseError::DestinationExists(dest.to_path_buf()));
            }
            let mut temp_name = name.to_os_string();
            temp_name.push(format!(".tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
            let temp = parent.join(temp_name);
            pending.push((temp.clone(), dest));
            let created = materialise_returning_directories(root, &temp, blobs, directories)?;
            to_sync.extend(created.directories);
            to_sync.extend(created.copies);
        }
        let Some(anchor) = parents.first().copied() else { return Ok(()) };
        if durability == Durability::Synced {
            durability::sync_all(&to_sync, anchor).map_err(|(path, e)| io_error(&path, e))?;
        }
        let handles = parents
            .iter()
            .map(|parent| File::open(parent).map_err(|e| io_error(parent, e)))
            .collect::<Result<Vec<_>, _>>()?;
        for (temp, dest) in pending.iter_mut() {
            rename_into_place(temp, dest)?;
            temp.clear();
        }
        if durability == Durability::Synced {
            for (handle, parent) in handles.iter().zip(&parents) {
                handle.sync_all().map_err(|e| io_error(parent, e))?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        for (temp, _) in &pending {
            if !temp.as_os_str().is_empty() && fs::symlink_metadata(temp).is_ok() {
                let _ = remove_tree(temp);
            }
        }
    }
    result
}

/// Creates a file root by hardlinking its pool file, or a symlink root, right at `dest`; returns
/// `false` when the root needs the temporary tree (a directory, or a file that must be copied).
/// Either appears complete under its name (a symlink gets its canonical mtime right after; it is
/// removed again if that fails). [`MaterialiseError::DestinationExists`] if `dest` exists.
fn place_directly(root: &Node, dest: &Path, blobs: &dyn BlobService) -> Result<bool, MaterialiseError> {
    match root {
        Node::File { digest, executable, .. } => link_blob(dest, digest, *executable, blobs),
        Node::Symlink { target } => place_symlink(dest, target.as_bytes()).map(|()| true),
        Node::Directory { .. } => Ok(false),
    }
}

/// Renames `temp` to `dest`, refusing to replace anything.
fn rename_into_place(temp: &Path, dest: &Path) -> Result<(), MaterialiseError> {
    match rustix::fs::renameat_with(rustix::fs::CWD, temp, rustix::fs::CWD, dest, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(MaterialiseError::DestinationExists(dest.to_path_buf())),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
            // No RENAME_NOREPLACE here: a plain rename refuses to replace a non-empty
            // directory, and we checked that `dest` was absent.
            if fs::symlink_metadata(dest).is_ok() {
                return Err(MaterialiseError::DestinationExists(dest.to_path_buf()));
            }
            fs::rename(temp, dest).map_err(|e| io_error(dest, e))
        }
        Err(e) => Err(io_error(dest, e.into())),
    }
}

/// Removes the tree at `path` (a file, symlink or directory), making read-only directories
/// writable first, as deleting a materialised tree requires. A missing `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        if meta.permissions().mode() & 0o700 != 0o700 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        }
        for entry in fs::read_dir(path)? {
            remove_tree(&entry?.path())?;
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
}
