//! Temporary roots in Nix's format, so that a garbage collector (Nix's, and later casnix's)
//! running at the same time never deletes a path this process is adding or using.
//!
//! As Nix 2.4–2.26 (`gc.cc`): each process has `<state_dir>/temproots/<pid>`, write-locked
//! (`flock`) for its whole life, holding full store paths each ended by a NUL. Before appending,
//! the process takes `<state_dir>/gc.lock` shared without waiting; if that fails a collector is
//! running, and the root is also sent to it over `<state_dir>/gc-socket/socket` (the path and a
//! line feed, answered by the byte `1`). A collector deletes the file of a process that is gone
//! (it can lock the file then).
//!
//! Nix keeps one such file per process (and a daemon forks one process per connection, so each
//! connection's roots vanish with it). [`TempRootsScope::Process`] does the same, whatever the
//! number of `Store`s; [`TempRootsScope::Own`] gives one `Store` a file of its own,
//! `temproots/<pid>-<n>`, removed when that `Store` is dropped: a daemon serving many connections
//! in one process opens a `Store` per connection with it. Nix (2.4–2.26) reads such a name with
//! `std::stoi`, which takes the leading `<pid>`, and treats the file like any other.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rustix::fs::FlockOperation;

use super::error::StoreError;

/// Whose temporary roots file a [`Store`](super::Store) writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TempRootsScope {
    /// The process's `temproots/<pid>`, shared by every `Store` of the process on the same
    /// state directory and removed with the last of them (Nix's behaviour).
    #[default]
    Process,
    /// A file of this `Store`'s own, `temproots/<pid>-<n>`, removed when the `Store` is dropped:
    /// its roots end with it, as a Nix daemon connection's roots end with its process.
    Own,
}

/// One file of temporary roots (a process's, or one `Store`'s).
#[derive(Debug)]
pub(crate) struct TempRoots {
    state_dir: PathBuf,
    /// The file's name in `temproots/`.
    name: String,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    file: Option<File>,
    gc_lock: Option<File>,
    socket: Option<UnixStream>,
}

fn registry() -> &'static Mutex<BTreeMap<PathBuf, Weak<TempRoots>>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<PathBuf, Weak<TempRoots>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn open_rw(path: &Path) -> Result<File, StoreError> {
    crate::flock::open_lock_file(path).map_err(StoreError::io("opening", path))
}

fn lock(file: &File, op: FlockOperation, path: &Path) -> Result<bool, StoreError> {
    crate::flock::lock(file, op).map_err(StoreError::io("locking", path))
}

impl TempRoots {
    /// This process's temporary roots under `state_dir`, shared by every `Store` on it; the
    /// file goes when the last of them is dropped (as Nix's `LocalStore` removes it).
    pub fn for_state_dir(state_dir: &Path) -> Arc<Self> {
        let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, weak| weak.strong_count() > 0);
        if let Some(live) = map.get(state_dir).and_then(Weak::upgrade) {
            return live;
        }
        let fresh = Arc::new(Self {
            state_dir: state_dir.to_path_buf(),
            name: std::process::id().to_string(),
            inner: Mutex::default(),
        });
        map.insert(state_dir.to_path_buf(), Arc::downgrade(&fresh));
        fresh
    }

    /// Temporary roots of one `Store` alone, in `temproots/<pid>-<n>` (`n` counts up within the
    /// process, so no two live files share a name).
    pub fn own(state_dir: &Path) -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Arc::new(Self {
            state_dir: state_dir.to_path_buf(),
            name: format!("{}-{n}", std::process::id()),
            inner: Mutex::default(),
        })
    }

    /// For the given scope: the shared process file, or a file of its own.
    pub fn for_scope(scope: TempRootsScope, state_dir: &Path) -> Arc<Self> {
        match scope {
            TempRootsScope::Process => Self::for_state_dir(state_dir),
            TempRootsScope::Own => Self::own(state_dir),
        }
    }

    fn path(&self) -> PathBuf {
        self.state_dir.join("temproots").join(&self.name)
    }

    /// Creates and write-locks the file (Nix's `createTempRootsFile`).
    fn create_file(&self) -> Result<File, StoreError> {
        let path = self.path();
        loop {
            // A file with our name is stale: no two live processes share a pid, and `<n>` is
            // never reused within this process.
            let _ = std::fs::remove_file(&path);
            let file = open_rw(&path)?;
            lock(&file, FlockOperation::LockExclusive, &path)?;
            // A collector may have deleted the file before we locked it: then start again.
            if file.metadata().map_err(StoreError::io("checking", &path))?.len() == 0 {
                return Ok(file);
            }
        }
    }

    /// Records `printed` (a full store path) as a temporary root (Nix's `addTempRoot`).
    pub fn add(&self, printed: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.file.is_none() {
            inner.file = Some(self.create_file()?);
        }
        let gc_lock_path = self.state_dir.join("gc.lock");
        let gc_lock = match inner.gc_lock.take() {
            Some(file) => file,
            None => open_rw(&gc_lock_path)?,
        };
        let result = loop {
            if lock(&gc_lock, FlockOperation::NonBlockingLockShared, &gc_lock_path)? {
                let appended = self.append(&mut inner, printed);
                let _ = crate::flock::lock(&gc_lock, FlockOperation::Unlock);
                break appended;
            }
            // A collector is running: tell it, then append as well.
            if self.tell_collector(&mut inner, printed)? {
                break self.append(&mut inner, printed);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        inner.gc_lock = Some(gc_lock);
        result
    }

    fn append(&self, inner: &mut Inner, printed: &str) -> Result<(), StoreError> {
        let path = self.state_dir.join("temproots");
        let file = match inner.file.take() {
            Some(file) => file,
            None => self.create_file()?,
        };
        let mut record = printed.as_bytes().to_vec();
        record.push(0);
        let written = (&file).write_all(&record);
        inner.file = Some(file);
        written.map_err(StoreError::io("writing temporary roots in", &path))
    }

    /// Sends the root to a running collector; `false` if it cannot be reached (yet, or any
    /// more), so the caller tries again.
    fn tell_collector(&self, inner: &mut Inner, printed: &str) -> Result<bool, StoreError> {
        let socket_path = self.state_dir.join("gc-socket").join("socket");
        if inner.socket.is_none() {
            match crate::unix_socket::with_short_path(&socket_path, |p| UnixStream::connect(p)) {
                Ok(s) => inner.socket = Some(s),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
                    return Ok(false)
                }
                Err(e) => return Err(StoreError::io("connecting to", &socket_path)(e)),
            }
        }
        let Some(socket) = inner.socket.as_mut() else { return Ok(false) };
        let mut ack = [0u8; 1];
        let sent = socket.write_all(format!("{printed}\n").as_bytes()).and_then(|()| socket.read_exact(&mut ack));
        match sent {
            Ok(()) if ack[0] == b'1' => Ok(true),
            Ok(()) => Err(StoreError::io("reading the collector's answer on", &socket_path)(std::io::Error::other(
                "unexpected answer",
            ))),
            Err(_) => {
                // The collector went away: reconnect (or take the lock) next time.
                inner.socket = None;
                Ok(false)
            }
        }
    }
}

impl Drop for TempRoots {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let Some(file) = inner.file.take() else { return };
        // Only our own file: a newer `TempRoots` of this process may have replaced it.
        use std::os::unix::fs::MetadataExt;
        let path = self.path();
        if let (Ok(ours), Ok(there)) = (file.metadata(), std::fs::metadata(&path)) {
            if ours.ino() == there.ino() && ours.dev() == there.dev() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
