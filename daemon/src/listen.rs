//! The socket: creating it (or taking it from systemd), accepting connections, one task
//! each, and stopping cleanly on SIGTERM/SIGINT (SIGHUP reloads `nix.conf`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::busy_poll::BusyPoll;
use crate::locations::Backend;
use crate::peer::Peer;
use crate::session::{self, Shared};
use crate::settings::Settings;

/// How long operations in flight may finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// The listening socket: systemd's (`LISTEN_FDS`) if given, else a new one at `path`,
/// replacing a stale one, writable by everyone (access is decided per connection).
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    let mut fds = listenfd::ListenFd::from_env();
    if let Some(std_listener) = fds.take_unix_listener(0).context("taking the socket from systemd")? {
        std_listener.set_nonblocking(true)?;
        tracing::info!("using the socket passed by systemd");
        return Ok(UnixListener::from_std(std_listener)?);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating '{}'", parent.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale socket '{}'", path.display())),
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding to socket '{}'", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("changing permissions of '{}'", path.display()))?;
    Ok(listener)
}

/// Serves one accepted connection on a thread of its own with a single-threaded runtime, as
/// Nix serves each in a process of its own: the session's store work runs on that thread
/// directly (no hand-over between threads per request), and a slow client or a long
/// operation never holds up another connection.
fn handle_on_own_thread(stream: UnixStream, backend: Backend, shared: Arc<Shared>) {
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => return tracing::warn!("refusing a connection: {e}"),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::error!("starting a connection's runtime: {e}"),
    };
    runtime.block_on(async move {
        match UnixStream::from_std(stream) {
            Ok(stream) => handle(stream, backend, shared).await,
            Err(e) => tracing::warn!("refusing a connection: {e}"),
        }
    });
}

/// Serves one accepted connection with `backend`.
async fn handle(stream: UnixStream, backend: Backend, shared: Arc<Shared>) {
    let cred = match stream.peer_cred() {
        Ok(cred) => cred,
        Err(e) => return tracing::warn!("refusing a connection without credentials: {e}"),
    };
    // Names come from NSS, which may block: this thread is the connection's own.
    let peer = Peer::from_ids(cred.uid(), cred.gid(), cred.pid());
    let span = tracing::info_span!("conn", uid = peer.uid, pid = peer.pid, user = %peer.user);
    async move {
        tracing::debug!("accepted");
        let result = match backend {
            Backend::Local => session::serve(BusyPoll::new(stream), Some(peer), &shared).await,
            Backend::Proxy(target) => proxy(stream, &target).await,
        };
        if let Err(e) = result {
            tracing::info!("connection ended: {e:#}");
        }
    }
    .instrument(span)
    .await;
}

/// Forwards a connection to another daemon's socket, both ways, until either side closes.
pub async fn proxy<S>(mut client: S, target: &Path) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut upstream =
        UnixStream::connect(target).await.with_context(|| format!("connecting to '{}'", target.display()))?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Accepts connections until SIGTERM or SIGINT, then waits (boundedly) for those in flight.
pub async fn run(listener: UnixListener, backend: Backend, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (backend, shared) = (backend.clone(), Arc::clone(&shared));
                    tasks.spawn_blocking(move || handle_on_own_thread(stream, backend, shared));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::error!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = hup.recv() => reload(&shared),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    drop(listener);
    shared.stop();
    tracing::info!(in_flight = tasks.len(), "stopping");
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(left = tasks.len(), "connections still open at shutdown; closing them");
        tasks.abort_all();
    }
    Ok(())
}

fn reload(shared: &Shared) {
    let nix_config = std::env::var("NIX_CONFIG").ok();
    match Settings::load(&shared.locations.conf_dir, nix_config.as_deref()) {
        Ok(settings) => {
            shared.replace_settings(settings);
            tracing::info!("reloaded nix.conf");
        }
        Err(e) => tracing::error!("not reloading nix.conf: {e}"),
    }
}
