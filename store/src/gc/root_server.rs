//! The collector's roots server (Nix's `gc-socket`): while a collection runs (holding
//! `gc.lock`), processes that want to add a temporary root cannot take `gc.lock` shared, so they
//! connect to `<state_dir>/gc-socket/socket` and send `<store path>\n`; the collector adds the
//! path's hash part to the roots it must not delete and answers with the byte `1`. If that path
//! is being deleted at that moment, the answer waits until the deletion is over (so the client
//! sees it invalid and adds it again).
//!
//! As Nix, roots are kept by hash part, so a path's `.lock`, `.tmp-…` and similar entries are
//! kept with it. Anyone may connect (the socket is mode 0666, as Nix's): a root only ever keeps
//! paths alive.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix_formats::store_path::{StoreDir, StorePath};
use rustix::event::{poll, PollFd, PollFlags};

use crate::local::StoreError;

/// The longest line accepted from a client (a store path is far shorter).
const MAX_LINE: u64 = 4096;

/// Clients served at once; more are turned away.
const MAX_CLIENTS: usize = 256;

#[derive(Debug, Default)]
struct State {
    /// Hash parts of every temporary root known to this collection.
    roots: HashSet<String>,
    /// Hash parts received since the collector last looked.
    fresh: Vec<String>,
    /// Hash parts of the paths being deleted right now.
    pending: HashSet<String>,
    /// The collection is over: nobody waits any more.
    stopping: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wakeup: Condvar,
    store_dir: StoreDir,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running server; stopped (its threads joined, its socket removed) when dropped.
#[derive(Debug)]
pub(crate) struct RootServer {
    shared: Arc<Shared>,
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
    socket_path: PathBuf,
}

impl RootServer {
    /// Creates `<state_dir>/gc-socket/socket` and serves it in a thread.
    pub fn start(state_dir: &Path, store_dir: StoreDir) -> Result<Self, StoreError> {
        let dir = state_dir.join("gc-socket");
        std::fs::create_dir_all(&dir).map_err(StoreError::io("creating directory", &dir))?;
        let socket_path = dir.join("socket");
        match std::fs::remove_file(&socket_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::io("removing", &socket_path)(e));
            }
            _ => {}
        }
        let listener = crate::unix_socket::with_short_path(&socket_path, |p| UnixListener::bind(p))
            .map_err(StoreError::io("binding", &socket_path))?;
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666))
            .map_err(StoreError::io("setting the mode of", &socket_path))?;
        listener.set_nonblocking(true).map_err(StoreError::io("making non-blocking", &socket_path))?;
        let (wake, woken) = UnixStream::pair().map_err(StoreError::io("creating a socket pair for", &socket_path))?;
        let shared = Arc::new(Shared { state: Mutex::default(), wakeup: Condvar::new(), store_dir });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("gc-roots-server".into())
            .spawn(move || serve(&listener, &woken, &thread_shared))
            .map_err(StoreError::io("starting the roots server for", &socket_path))?;
        Ok(Self { shared, wake, thread: Some(thread), socket_path })
    }

    /// Adds roots found otherwise (the temporary roots files).
    pub fn add_roots<'a>(&self, paths: impl IntoIterator<Item = &'a StorePath>) {
        let mut state = self.shared.lock();
        state.roots.extend(paths.into_iter().map(|p| p.hash_part().to_owned()));
    }

    /// Whether a path with this hash part is a temporary root.
    pub fn is_root(&self, hash_part: &str) -> bool {
        self.shared.lock().roots.contains(hash_part)
    }

    /// The hash parts received over the socket since the last call.
    pub fn take_fresh(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.lock().fresh)
    }

    /// Claims `candidates` for deletion: if roots arrived since [`Self::take_fresh`], returns
    /// them (the caller accounts for them and asks again); otherwise marks the candidates that
    /// are not roots as being deleted and returns those. Every claim is followed by
    /// [`Self::release`].
    pub fn claim<T>(&self, candidates: Vec<(&str, T)>) -> Result<Vec<T>, Vec<String>> {
        let mut state = self.shared.lock();
        if !state.fresh.is_empty() {
            return Err(std::mem::take(&mut state.fresh));
        }
        let mut claimed = Vec::new();
        for (hash_part, item) in candidates {
            if !state.roots.contains(hash_part) {
                state.pending.insert(hash_part.to_owned());
                claimed.push(item);
            }
        }
        Ok(claimed)
    }

    /// Ends a deletion: clients waiting for one of its paths get their answer.
    pub fn release(&self) {
        self.shared.lock().pending.clear();
        self.shared.wakeup.notify_all();
    }
}

impl Drop for RootServer {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.stopping = true;
            state.pending.clear();
        }
        self.shared.wakeup.notify_all();
        let _ = (&self.wake).write_all(b"x");
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// Accepts clients until woken through `woken`, then ends every client connection.
fn serve(listener: &UnixListener, woken: &UnixStream, shared: &Arc<Shared>) {
    let clients: Arc<Mutex<HashMap<u64, UnixStream>>> = Arc::default();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    loop {
        let mut fds = [PollFd::new(woken, PollFlags::IN), PollFd::new(listener, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("GC roots server: poll failed: {e}");
                break;
            }
        }
        if !fds[0].revents().is_empty() {
            break;
        }
        if fds[1].revents().is_empty() {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!("GC roots server: accept failed: {e}");
                continue;
            }
        };
        threads.retain(|t| !t.is_finished());
        if threads.len() >= MAX_CLIENTS {
            tracing::warn!("GC roots server: too many clients, closing a connection");
            continue;
        }
        let Ok(copy) = stream.try_clone() else { continue };
        let id = next_id;
        next_id += 1;
        lock_clients(&clients).insert(id, copy);
        let (shared, clients_of_thread) = (Arc::clone(shared), Arc::clone(&clients));
        let spawned = std::thread::Builder::new().name("gc-roots-client".into()).spawn(move || {
            serve_client(stream, &shared);
            lock_clients(&clients_of_thread).remove(&id);
        });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                tracing::warn!("GC roots server: cannot start a client thread: {e}");
                lock_clients(&clients).remove(&id);
            }
        }
    }
    for stream in lock_clients(&clients).values() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
}

fn lock_clients(clients: &Mutex<HashMap<u64, UnixStream>>) -> MutexGuard<'_, HashMap<u64, UnixStream>> {
    clients.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads roots from one client until it hangs up (or the server stops).
fn serve_client(stream: UnixStream, shared: &Shared) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match Read::by_ref(&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(_) if line.last() == Some(&b'\n') => {}
            // End of file, an unfinished or overlong line, or an error: drop the client.
            _ => return,
        }
        line.pop();
        let path = std::str::from_utf8(&line).ok().and_then(|s| shared.store_dir.parse(s).ok());
        match path {
            Some(path) => {
                tracing::debug!("got new GC root '{}'", shared.store_dir.print(&path));
                let hash_part = path.hash_part().to_owned();
                let mut state = shared.lock();
                state.roots.insert(hash_part.clone());
                state.fresh.push(hash_part.clone());
                while state.pending.contains(&hash_part) && !state.stopping {
                    state = shared.wakeup.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
            None => tracing::error!("received garbage instead of a root from client"),
        }
        if writer.write_all(b"1").is_err() {
            return;
        }
    }
}
