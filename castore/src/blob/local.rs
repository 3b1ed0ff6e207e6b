//! [`LocalBlobService`]: blobs as immutable files in a local pool, ready to be hardlinked.
//!
//! Layout, under the pool directory:
//!
//! ```text
//! ab/abcdef…        the blob with digest abcdef… (64 hex digits), mode 0444, mtime 1
//! ab/abcdef….x      the same bytes as an executable inode, mode 0555, mtime 1
//! ab/.tmp-…         a blob with a known digest waiting for the next flush
//! tmp/.tmp-…        a blob being streamed (digest not known yet) or waiting for the flush
//! ```
//!
//! The fan-out directories (`00` … `ff`, the first byte of the digest; one level, so 2^20 blobs
//! make 4096 files per directory) are created on first use. A blob is stored if either variant exists: the first one is created by its
//! writer ([`BlobService::writer`] or [`BlobService::executable_writer`]), the other one on demand
//! by [`path_for_link`](BlobService::path_for_link), which copies the bytes (a reflink where the
//! file system can). An inode's mode is shared by all its hardlinks, which is why executables
//! need their own inode: materialised trees hardlink `abcdef…` for plain files and `abcdef….x`
//! for executables, so every file in the store is one of these inodes and identical files are
//! stored once.
//!
//! Writing: a writer hashes while it receives bytes, keeping up to 1 MiB in memory and spilling
//! larger blobs to a temporary file in `tmp/`; a blob held in memory (or given whole to
//! [`write_bytes`](BlobService::write_bytes)) is written to a temporary file in its fan-out
//! directory, which spreads file creation over 256 directories. Temporary files are unnamed
//! (`O_TMPFILE`, see `blob/anonymous.rs`) where the file system allows and the descriptor budget
//! lasts: the flush then gives each its final name with one `linkat`, instead of a rename that
//! adds a name and removes the temporary one. When waiting blobs hold the whole budget, the
//! writer that finds it spent flushes them (a 20,000-file add used to name and rename half its
//! blobs). With [`Durability::Synced`],
//! temporary files of 64 KiB and more are written with direct I/O (`O_DIRECT`, see
//! `blob/direct.rs`); smaller ones through the page cache, written out by the flush.
//! On [`finish`](BlobWriter::finish), if the blob is already stored (or already waiting), nothing is written; otherwise the temporary file gets its
//! final mode and mtime and waits for the next [`flush`](BlobService::flush), which makes all
//! waiting blobs durable (see [`durability`]: parallel `fsync`s, or one
//! `syncfs` for large batches), renames them into place without replacing anything
//! (`RENAME_NOREPLACE`; the loser of a race discards its copy), and syncs the fan-out directories
//! so the names are durable. Until then a finished blob is not visible. So a crash never leaves a
//! pool file whose bytes do not match its name, concurrent writers of the same bytes end with one
//! file, and a batch of many small blobs does not pay one journal commit per blob.
//!
//! Deleting: a pool file whose link count is 1 is used by no materialised tree;
//! [`remove_if_unused`](LocalBlobService::remove_if_unused) and
//! [`sweep_unused`](LocalBlobService::sweep_unused) delete such files. They must not run
//! concurrently with materialisations that may link the same blobs (the store's GC lock orders
//! them): a link made between the check and the unlink survives, but loses its pool entry.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

use super::anonymous;
use super::direct::{self, DirectWriter};
use super::{BlobError, BlobReader, BlobService, BlobWriter};
use crate::canonical;
use crate::durability::{self, Durability};
use crate::digest::B3Digest;

/// Blobs up to this size stay in memory until they are finished (and are never written if they
/// are already stored).
const MEMORY_LIMIT: usize = 1 << 20;

/// Name of the directory of temporary files whose digest is not known yet.
const TEMP_DIR: &str = "tmp";

/// Prefix of temporary files (in `tmp/`, and in fan-out directories for blobs whose digest is
/// known before they are written).
const TEMP_PREFIX: &str = ".tmp-";

/// Suffix of the executable variant of a blob.
const EXECUTABLE_SUFFIX: &str = ".x";

/// Temporary files older than this (by ctime) are left over from crashes; sweeps remove them.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// A pool of blobs in a local directory (see the [module documentation](self)).
///
/// Cloning is cheap and shares the pool and its pending blobs.
#[derive(Clone, Debug)]
pub struct LocalBlobService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    durability: Durability,
    temp_dir: PathBuf,
    /// Finished blobs waiting for the next flush: digest → (temporary file, executable).
    staged: Mutex<HashMap<B3Digest, (Waiting, bool)>>,
    /// This process's id, part of temporary file names.
    pid: u32,
    /// A fan-out directory was created since the last flush (the root needs a sync).
    root_changed: AtomicBool,
    /// Serialises flushes, so a flush returns only after earlier flushes are complete.
    flush_lock: Mutex<()>,
    temp_counter: AtomicU64,
}

/// What [`LocalBlobService::sweep_unused`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Pool files removed (each variant counts).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Stale temporary files removed.
    pub temporaries: u64,
    /// Bytes that hard links save among the pool files kept: each file linked from more than
    /// one place outside the pool saves its size once per extra link.
    pub linked_savings: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent across panics (single inserts and swaps).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `path` exists (without following symlinks).
fn exists(path: &Path) -> Result<bool, BlobError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BlobError::io(path, e)),
    }
}

/// Renames `from` to `to` unless `to` exists; `Ok(false)` if it did (and `from` is left).
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        // The file system cannot do it: link and unlink, which never replaces either.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
            match fs::hard_link(from, to) {
                Ok(()) => {
                    fs::remove_file(from)?;
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a temporary file was last changed so long ago that its writer must have died.
fn is_stale(meta: &fs::Metadata, now: SystemTime) -> bool {
    let changed = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(meta.ctime()).unwrap_or(0));
    now.duration_since(changed).is_ok_and(|age| age > STALE_TEMP_AGE)
}

/// Gives a finished temporary file its final metadata.
fn make_canonical(file: &File, path: &Path, executable: bool) -> Result<(), BlobError> {
    file.set_permissions(fs::Permissions::from_mode(canonical::file_mode(executable)))
        .and_then(|()| file.set_times(fs::FileTimes::new().set_modified(canonical::mtime())))
        .map_err(|e| BlobError::io(path, e))
}

/// A temporary file, named (deleted on drop unless [`keep`](Self::keep) is called) or unnamed
/// (see [`anonymous`]; `path` is then its directory, for messages).
struct TempFile {
    path: PathBuf,
    file: File,
    /// Opened for direct I/O (see [`direct`]).
    direct: bool,
    /// Deletes a named file on drop (`None` for an unnamed one).
    named: Option<RemoveOnDrop>,
    /// An unnamed file's budget slot.
    slot: Option<anonymous::Slot>,
}

/// Deletes the file at `path` on drop while `armed`.
struct RemoveOnDrop {
    path: PathBuf,
    armed: bool,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A finished blob waiting for the flush to give it its name.
#[derive(Debug)]
enum Waiting {
    /// A named temporary file.
    Named(PathBuf),
    /// An unnamed one, kept open until then.
    Unnamed { file: File, dir: PathBuf, _slot: anonymous::Slot },
}

impl TempFile {
    /// Keeps the file for the flush.
    fn keep(self) -> Waiting {
        let TempFile { path, file, mut named, slot, .. } = self;
        match slot {
            Some(slot) => Waiting::Unnamed { file, dir: path, _slot: slot },
            None => {
                if let Some(named) = named.as_mut() {
                    named.armed = false;
                }
                Waiting::Named(path)
            }
        }
    }
}

impl Inner {
    fn path(&self, digest: &B3Digest, executable: bool) -> PathBuf {
        let hex = digest.to_hex();
        let mut path = self.root.join(&hex[..2]);
        if executable {
            path.push(format!("{hex}{EXECUTABLE_SUFFIX}"));
        } else {
            path.push(hex);
        }
        path
    }

    /// A new temporary file in `tmp/`, for a blob whose digest is not known yet.
    fn create_temp(&self) -> Result<TempFile, BlobError> {
        self.create_temp_in(&self.temp_dir, true)
    }

    /// A new temporary file `.tmp-…` in `dir` (created if missing); `whole_blocks` says whether
    /// it will hold at least one whole block (else direct I/O buys nothing).
    fn create_temp_in(&self, dir: &Path, whole_blocks: bool) -> Result<TempFile, BlobError> {
        let pid = self.pid;
        let direct = self.durability == Durability::Synced && whole_blocks;
        let mut flushed = false;
        loop {
            match anonymous::create(dir, direct) {
                None if !flushed && anonymous::budget_spent() => {
                    // Every descriptor of the budget is held by a waiting blob: flushing them now
                    // (unless another thread is flushing already) gives the descriptors back, so
                    // this blob and the next ones stay unnamed instead of costing a creation and
                    // a rename each. Blobs are flushed in the middle of a batch that way, which
                    // is safe: a flushed blob is a pool file that no tree uses yet, as after any
                    // flush before materialising (sweeps, which would delete it, are kept apart
                    // from adds by the store's pool lock).
                    flushed = true;
                    if let Ok(flushing) = self.flush_lock.try_lock() {
                        self.flush_locked(flushing)?;
                        continue;
                    }
                }
                None => {}
                Some(Ok((file, direct, slot))) => {
                    return Ok(TempFile { path: dir.to_path_buf(), file, direct, named: None, slot: Some(slot) });
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::NotFound && dir != self.temp_dir => {
                    self.create_fan_out(dir)?;
                    continue;
                }
                Some(Err(e)) => return Err(BlobError::io(dir, e)),
            }
            let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
            let path = dir.join(format!("{TEMP_PREFIX}{pid}-{n}-{nanos:08x}"));
            // Synced blobs are written around the page cache (see `direct`).
            match direct::create(&path, direct) {
                Ok((file, direct)) => {
                    let named = Some(RemoveOnDrop { path: path.clone(), armed: true });
                    return Ok(TempFile { path, file, direct, named, slot: None });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir != self.temp_dir => self.create_fan_out(dir)?,
                Err(e) => return Err(BlobError::io(path, e)),
            }
        }
    }

    /// Creates the fan-out directory `dir` unless it exists.
    fn create_fan_out(&self, dir: &Path) -> Result<(), BlobError> {
        match fs::create_dir(dir) {
            Ok(()) => {
                self.root_changed.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(BlobError::io(dir, e)),
        }
    }

    /// The fan-out directory of a digest.
    fn fan_out(&self, digest: &B3Digest) -> PathBuf {
        self.root.join(format!("{:02x}", digest.as_bytes()[0]))
    }

    /// Whether the blob is stored, in either variant.
    fn stored(&self, digest: &B3Digest) -> Result<bool, BlobError> {
        Ok(exists(&self.path(digest, false))? || exists(&self.path(digest, true))?)
    }

    fn is_staged(&self, digest: &B3Digest) -> bool {
        lock(&self.staged).contains_key(digest)
    }

    /// Queues a finished temporary file for the next flush, unless the blob is queued already.
    fn stage(&self, digest: B3Digest, temp: TempFile, executable: bool) {
        let mut staged = lock(&self.staged);
        staged.entry(digest).or_insert_with(|| (temp.keep(), executable));
        // If another writer got there first, dropping `temp` here deletes our copy.
    }

    /// Opens the stored blob in either variant.
    fn open(&self, digest: &B3Digest) -> Result<Option<File>, BlobError> {
        for executable in [false, true] {
            let path = self.path(digest, executable);
            match File::open(&path) {
                Ok(file) => return Ok(Some(file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::io(path, e)),
            }
        }
        Ok(None)
    }

    /// Opens a blob stored or staged (written but not flushed yet: its temporary file, until a
    /// flush moves it into the pool). Staged blobs are looked for first (in memory): an add
    /// reads back blobs it has just written (content-address checks, derivations), which are
    /// not in the pool yet.
    fn open_stored_or_staged(&self, digest: &B3Digest) -> Result<Option<File>, BlobError> {
        let temp = match lock(&self.staged).get(digest) {
            None => None,
            Some((Waiting::Named(temp), _)) => Some(temp.clone()),
            Some((Waiting::Unnamed { file, dir, .. }, _)) => {
                return anonymous::reopen(file).map(Some).map_err(|e| BlobError::io(dir, e));
            }
        };
        let Some(temp) = temp else {
            return self.open(digest);
        };
        match File::open(&temp) {
            Ok(file) => Ok(Some(file)),
            // Flushed meanwhile: it is in the pool now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.open(digest),
            Err(e) => Err(BlobError::io(temp, e)),
        }
    }

    fn flush(&self) -> Result<(), BlobError> {
        self.flush_locked(lock(&self.flush_lock))
    }

    /// [`flush`](Self::flush) with the flush lock held (`_flushing`).
    fn flush_locked(&self, _flushing: MutexGuard<'_, ()>) -> Result<(), BlobError> {
        let staged: Vec<(B3Digest, (Waiting, bool))> = lock(&self.staged).drain().collect();
        if staged.is_empty() {
            return Ok(());
        }
        // The fan-out directories that get new names (at most 256), created on first use.
        let mut dirs: Vec<PathBuf> = staged
            .iter()
            .map(|(digest, _)| digest.as_bytes()[0])
            .collect::<std::collections::BTreeSet<u8>>()
            .into_iter()
            .map(|byte| self.root.join(format!("{byte:02x}")))
            .collect();
        let mut created = self.root_changed.swap(false, Ordering::Relaxed);
        for dir in &dirs {
            match fs::create_dir(dir) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    lock(&self.staged).extend(staged);
                    return Err(BlobError::io(dir, e));
                }
            }
        }
        if created {
            dirs.push(self.root.clone());
        }
        let synced = match self.durability {
            Durability::Synced => self.sync_waiting(&staged),
            Durability::Unsynced => Ok(()),
        };
        if let Err((path, e)) = synced {
            lock(&self.staged).extend(staged);
            return Err(BlobError::io(path, e));
        }
        let failed: Vec<_> = staged
            .into_par_iter()
            .filter_map(|(digest, (waiting, executable))| {
                let target = self.path(&digest, executable);
                let placed = match &waiting {
                    Waiting::Named(temp) => rename_no_replace(temp, &target),
                    Waiting::Unnamed { file, .. } => anonymous::link(file, &target),
                };
                match placed {
                    Ok(true) => None,
                    Ok(false) => {
                        if let Waiting::Named(temp) = &waiting {
                            let _ = fs::remove_file(temp);
                        }
                        None
                    }
                    Err(e) => Some((digest, (waiting, executable), BlobError::io(target, e))),
                }
            })
            .collect();
        let mut first_error = None;
        if !failed.is_empty() {
            let mut staged = lock(&self.staged);
            for (digest, entry, error) in failed {
                staged.insert(digest, entry);
                first_error.get_or_insert(error);
            }
        }
        if self.durability == Durability::Synced {
            durability::sync_all(&dirs, &self.root).map_err(|(path, e)| BlobError::io(path, e))?;
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Inner {
    /// Makes the waiting blobs' bytes durable: one `syncfs` for a large batch (see
    /// [`durability`]), else an `fsync` of each (unnamed files through their descriptors).
    fn sync_waiting(&self, staged: &[(B3Digest, (Waiting, bool))]) -> Result<(), (PathBuf, io::Error)> {
        let mut named = Vec::new();
        let mut unnamed = Vec::new();
        for (_, (waiting, _)) in staged {
            match waiting {
                Waiting::Named(path) => named.push(path.clone()),
                Waiting::Unnamed { file, dir, .. } => unnamed.push((file, dir)),
            }
        }
        if durability::prefer_syncfs(staged.len()) {
            let handle = File::open(&self.temp_dir).map_err(|e| (self.temp_dir.clone(), e))?;
            return rustix::fs::syncfs(&handle).map_err(|e| (self.temp_dir.clone(), e.into()));
        }
        durability::sync_all(&named, &self.temp_dir)?;
        unnamed.par_iter().try_for_each(|(file, dir)| file.sync_all().map_err(|e| ((*dir).clone(), e)))
    }
}

impl LocalBlobService {
    /// Opens the pool at `root`, creating it (and its temporary directory) if needed, with
    /// synced writes.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        Self::open_with(root, Durability::Synced)
    }

    /// Opens the pool at `root` with the given durability.
    pub fn open_with(root: impl Into<PathBuf>, durability: Durability) -> Result<Self, BlobError> {
        let root = root.into();
        let temp_dir = root.join(TEMP_DIR);
        fs::create_dir_all(&temp_dir).map_err(|e| BlobError::io(&temp_dir, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                durability,
                temp_dir,
                staged: Mutex::new(HashMap::new()),
                pid: std::process::id(),
                root_changed: AtomicBool::new(false),
                flush_lock: Mutex::new(()),
                temp_counter: AtomicU64::new(0),
            }),
        })
    }

    /// The pool directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where the blob's variant lives (or would live) in the pool.
    pub fn pool_path(&self, digest: &B3Digest, executable: bool) -> PathBuf {
        self.inner.path(digest, executable)
    }

    fn new_writer(&self, executable: bool) -> LocalBlobWriter {
        LocalBlobWriter {
            inner: Arc::clone(&self.inner),
            executable,
            hasher: blake3::Hasher::new(),
            size: 0,
            memory: Vec::new(),
            temp: None,
        }
    }

    /// Deletes the blob's pool files whose link count is 1 (used by no materialised tree).
    /// Returns whether the blob is gone (no variant left).
    pub fn remove_if_unused(&self, digest: &B3Digest) -> Result<bool, BlobError> {
        let mut gone = true;
        for executable in [false, true] {
            let path = self.inner.path(digest, executable);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.nlink() <= 1 => match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlobError::io(path, e)),
                },
                Ok(_) => gone = false,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::io(path, e)),
            }
        }
        Ok(gone)
    }

    /// Deletes every pool file whose link count is 1, and temporary files left over from crashes
    /// (changed more than a day ago). See the module documentation for when this is safe.
    pub fn sweep_unused(&self) -> Result<SweepStats, BlobError> {
        self.sweep_unused_but(&HashSet::new())
    }

    /// [`Self::sweep_unused`], with one link of each file whose `(device, inode)` is in
    /// `ignored` not counted: links from places that do not use the blob (Nix's `.links`
    /// directory, which `nix-store --optimise` fills).
    pub fn sweep_unused_but(&self, ignored: &HashSet<(u64, u64)>) -> Result<SweepStats, BlobError> {
        let root = &self.inner.root;
        let now = SystemTime::now();
        let dirs: Vec<PathBuf> = (0..=255u8).map(|b| root.join(format!("{b:02x}"))).collect();
        let per_dir = dirs
            .par_iter()
            .map(|dir| {
                let mut stats = SweepStats::default();
                let entries = match fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stats),
                    Err(e) => return Err(BlobError::io(dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| BlobError::io(dir, e))?;
                    let path = entry.path();
                    let meta = match fs::symlink_metadata(&path) {
                        Ok(meta) => meta,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(BlobError::io(path, e)),
                    };
                    if entry.file_name().as_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                        if is_stale(&meta, now) && fs::remove_file(&path).is_ok() {
                            stats.temporaries += 1;
                        }
                    } else if meta.nlink() > 2 {
                        stats.linked_savings += (meta.nlink() - 2) * meta.len();
                    }
                    let nlink = meta.nlink().saturating_sub(u64::from(ignored.contains(&(meta.dev(), meta.ino()))));
                    if nlink <= 1 && !entry.file_name().as_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                        match fs::remove_file(&path) {
                            Ok(()) => {
                                stats.files += 1;
                                stats.bytes += meta.len();
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(BlobError::io(path, e)),
                        }
                    }
                }
                Ok(stats)
            })
            .collect::<Result<Vec<_>, BlobError>>()?;
        let mut total = per_dir.into_iter().fold(SweepStats::default(), |a, b| SweepStats {
            files: a.files + b.files,
            bytes: a.bytes + b.bytes,
            temporaries: a.temporaries + b.temporaries,
            linked_savings: a.linked_savings + b.linked_savings,
        });
        let temp_dir = &self.inner.temp_dir;
        for entry in fs::read_dir(temp_dir).map_err(|e| BlobError::io(temp_dir, e))? {
            let path = entry.map_err(|e| BlobError::io(temp_dir, e))?.path();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if is_stale(&meta, now) && fs::remove_file(&path).is_ok() {
                total.temporaries += 1;
            }
        }
        Ok(total)
    }

    /// Re-reads the stored blob and checks that its BLAKE3 digest matches; `Ok(false)` if a
    /// variant holds other bytes, [`BlobError::NotFound`] if neither exists.
    pub fn verify(&self, digest: &B3Digest) -> Result<bool, BlobError> {
        let mut found = false;
        for executable in [false, true] {
            let path = self.inner.path(digest, executable);
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BlobError::io(path, e)),
            };
            found = true;
            let mut hasher = blake3::Hasher::new();
            io::copy(&mut file, &mut hasher).map_err(|e| BlobError::io(&path, e))?;
            if B3Digest::from(hasher.finalize()) != *digest {
                return Ok(false);
            }
        }
        if found {
            Ok(true)
        } else {
            Err(BlobError::NotFound(*digest))
        }
    }
}

impl BlobService for LocalBlobService {
    fn has(&self, digest: &B3Digest) -> Result<bool, BlobError> {
        self.inner.stored(digest)
    }

    fn size(&self, digest: &B3Digest) -> Result<Option<u64>, BlobError> {
        for executable in [false, true] {
            let path = self.inner.path(digest, executable);
            match fs::symlink_metadata(&path) {
                Ok(meta) => return Ok(Some(meta.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::io(path, e)),
            }
        }
        Ok(None)
    }

    fn open_read(&self, digest: &B3Digest) -> Result<Option<Box<dyn BlobReader>>, BlobError> {
        Ok(self.inner.open_stored_or_staged(digest)?.map(|file| Box::new(file) as Box<dyn BlobReader>))
    }

    fn writer(&self) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(self.new_writer(false)))
    }

    fn executable_writer(&self) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(self.new_writer(true)))
    }

    fn flush(&self) -> Result<(), BlobError> {
        self.inner.flush()
    }

    fn write_bytes(&self, data: &[u8], executable: bool) -> Result<(B3Digest, u64), BlobError> {
        // Hashed and written straight from `data`, without a writer's buffer.
        let digest = B3Digest::of(data);
        self.inner.finish(digest, Contents::Memory(data), executable)?;
        Ok((digest, data.len() as u64))
    }

    fn link_path_hint(&self, digest: &B3Digest, executable: bool) -> Option<PathBuf> {
        Some(self.inner.path(digest, executable))
    }

    fn path_for_link(&self, digest: &B3Digest, executable: bool) -> Result<Option<PathBuf>, BlobError> {
        let inner = &self.inner;
        let wanted = inner.path(digest, executable);
        if exists(&wanted)? {
            return Ok(Some(wanted));
        }
        let other = inner.path(digest, !executable);
        let mut source = match File::open(&other) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::NotFound(*digest)),
            Err(e) => return Err(BlobError::io(other, e)),
        };
        // The other variant exists: copy it into a new inode with the wanted mode.
        let temp = inner.create_temp()?;
        let temp_path = temp.path.clone();
        copy_into(&temp, &mut source).map_err(|e| BlobError::io(&temp_path, e))?;
        make_canonical(&temp.file, &temp_path, executable)?;
        if inner.durability == Durability::Synced {
            temp.file.sync_all().map_err(|e| BlobError::io(&temp_path, e))?;
        }
        let placed = match temp.keep() {
            Waiting::Named(temp_path) => {
                let placed = rename_no_replace(&temp_path, &wanted);
                if !matches!(placed, Ok(true)) {
                    let _ = fs::remove_file(&temp_path);
                }
                placed
            }
            Waiting::Unnamed { file, .. } => anonymous::link(&file, &wanted),
        };
        placed.map_err(|e| BlobError::io(&wanted, e))?;
        if let (Some(dir), Durability::Synced) = (wanted.parent(), inner.durability) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BlobError::io(dir, e))?;
        }
        Ok(Some(wanted))
    }
}

/// The writer of [`LocalBlobService`] (see the module documentation).
struct LocalBlobWriter {
    inner: Arc<Inner>,
    executable: bool,
    hasher: blake3::Hasher,
    size: u64,
    /// The bytes so far, while they fit in [`MEMORY_LIMIT`] and `temp` is `None`.
    memory: Vec<u8>,
    /// The temporary file once the blob outgrew memory, and its writer.
    temp: Option<(TempFile, DirectWriter)>,
}

/// Copies `source` into the new temporary file `temp`.
fn copy_into(temp: &TempFile, source: &mut impl io::Read) -> io::Result<()> {
    let mut writer = DirectWriter::new(&temp.file, temp.direct)?;
    let mut buffer = vec![0u8; 128 * 1024];
    loop {
        match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => writer.write_all(&temp.file, &buffer[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    writer.finish(&temp.file).map(drop)
}

impl Write for LocalBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.temp.is_none() && self.memory.len() + buf.len() > MEMORY_LIMIT {
            let temp = self.inner.create_temp().map_err(io::Error::other)?;
            let mut writer = DirectWriter::new(&temp.file, temp.direct)?;
            writer.write_all(&temp.file, &self.memory)?;
            self.memory = Vec::new();
            self.temp = Some((temp, writer));
        }
        match &mut self.temp {
            Some((temp, writer)) => writer.write_all(&temp.file, buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for LocalBlobWriter {
    fn finish(self: Box<Self>) -> Result<(B3Digest, u64), BlobError> {
        let LocalBlobWriter { inner, executable, hasher, size, memory, temp } = *self;
        let digest = B3Digest::from(hasher.finalize());
        let contents = match temp {
            Some((temp, writer)) => {
                writer.finish(&temp.file).map_err(|e| BlobError::io(&temp.path, e))?;
                Contents::Written(temp)
            }
            None => Contents::Memory(&memory),
        };
        inner.finish(digest, contents, executable)?;
        Ok((digest, size))
    }
}

/// A finished blob's bytes: already in a temporary file, or still in memory.
enum Contents<'a> {
    Written(TempFile),
    Memory(&'a [u8]),
}

impl Inner {
    /// Stages a finished blob, unless it is stored or staged already (then its bytes are dropped).
    fn finish(&self, digest: B3Digest, contents: Contents<'_>, executable: bool) -> Result<(), BlobError> {
        // Only the variant wanted: materialising would make it from the other one anyway.
        if exists(&self.path(&digest, executable))? || self.is_staged(&digest) {
            return Ok(()); // Dropping a temporary file deletes it.
        }
        let temp = match contents {
            Contents::Written(temp) => temp,
            Contents::Memory(bytes) => {
                // The digest is known: write beside the final name, which spreads the files over
                // the fan-out directories (and their inode groups) and keeps the rename local.
                let temp = self.create_temp_in(&self.fan_out(&digest), bytes.len() >= direct::DIRECT_MIN)?;
                let mut writer = DirectWriter::new(&temp.file, temp.direct).map_err(|e| BlobError::io(&temp.path, e))?;
                writer
                    .write_all(&temp.file, bytes)
                    .and_then(|()| writer.finish(&temp.file))
                    .map_err(|e| BlobError::io(&temp.path, e))?;
                temp
            }
        };
        let path = temp.path.clone();
        make_canonical(&temp.file, &path, executable)?;
        self.stage(digest, temp, executable);
        Ok(())
    }
}
