//! One client connection: trust, the store opened for it, the handshake, then requests until
//! the client leaves.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;
use worker_protocol::connection::{ServerConfig, ServerConnection};
use worker_protocol::logger::RemoteError;
use worker_protocol::types::{ClientHandshakeInfo, TrustedFlag};

use crate::locations::Locations;
use crate::ops::{self, OpError, Session};
use crate::peer::{Peer, Trust};
use crate::settings::Settings;
use crate::timeout::{io_timeout, TimedStream};
use crate::version::version_string;
use store::Store;

/// What every connection shares: the settings (replaced on SIGHUP), the locations, and the
/// trust forced by the command line.
#[derive(Debug)]
pub struct Shared {
    settings: std::sync::RwLock<Arc<Settings>>,
    /// Where things are.
    pub locations: Arc<Locations>,
    /// `--force-trusted` / `--force-untrusted`.
    pub forced_trust: Option<Trust>,
    /// Becomes `true` when the daemon stops: idle connections close then.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// Shared state with these settings.
    pub fn new(settings: Settings, locations: Locations, forced_trust: Option<Trust>) -> Self {
        Self {
            settings: std::sync::RwLock::new(Arc::new(settings)),
            locations: Arc::new(locations),
            forced_trust,
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Tells every connection that the daemon is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the settings (for connections that start later).
    pub fn replace_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }
}

/// Opens the store for one connection, so each sees the store as it is on disk now (Nix's
/// tests delete and recreate it between connections).
pub async fn open_store(locations: &Locations) -> anyhow::Result<Arc<Store>> {
    let mut config = locations.store_config();
    // Each connection's temporary roots end with it, as with Nix's process per connection.
    config.temp_roots = store::TempRootsScope::Own;
    let store = tokio::task::spawn_blocking(move || Store::open(&config)).await??;
    Ok(Arc::new(store))
}

/// Serves one connection. `peer` is `None` for `--stdio` (trusted unless forced otherwise).
pub async fn serve<S>(stream: S, peer: Option<Peer>, shared: &Shared) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = shared.settings();
    let trust = match &peer {
        Some(peer) => peer.decide(
            shared.forced_trust,
            &settings.trusted_users,
            &settings.allowed_users,
            &settings.build_users_group,
        )?,
        None => shared.forced_trust.unwrap_or(Trust::Trusted),
    };
    let store = open_store(&shared.locations).await?;
    let (stream, timer) = TimedStream::new(stream, io_timeout(&settings));
    let config = ServerConfig {
        info: ClientHandshakeInfo {
            daemon_nix_version: Some(version_string()),
            remote_trusts_us: Some(match trust {
                Trust::Trusted => TrustedFlag::Trusted,
                Trust::Untrusted => TrustedFlag::NotTrusted,
            }),
        },
        store_dir: store.store_dir().clone(),
        ..ServerConfig::default()
    };
    let conn = ServerConnection::accept(stream, &config).await?;
    timer.idle();
    tracing::debug!(version = %conn.version(), ?trust, "handshake done");
    let max_jobs = settings.max_jobs;
    let session = Session {
        store,
        trust,
        settings,
        locations: Arc::clone(&shared.locations),
        // Until the client's `SetOptions`, the daemon's own `max-jobs`.
        options: worker_protocol::ops::ClientOptions { max_build_jobs: max_jobs, ..Default::default() },
        restricted: None,
        path_infos: Default::default(),
    };
    serve_requests(conn, session, &timer, shared.stopping.subscribe()).await
}

/// Serves a recursive Nix connection (a builder's, through its `.nix-socket`): untrusted, the
/// daemon's settings (`SetOptions` is ignored), the building session's store, seen through
/// `restriction`.
pub async fn serve_restricted<S>(
    stream: S,
    context: &crate::build::recursive::RecursiveContext,
    restriction: Arc<crate::build::recursive::Restriction>,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = Arc::clone(&context.settings);
    let (stream, timer) = TimedStream::new(stream, io_timeout(&settings));
    let config = ServerConfig {
        info: ClientHandshakeInfo {
            daemon_nix_version: Some(version_string()),
            remote_trusts_us: Some(TrustedFlag::NotTrusted),
        },
        store_dir: context.store.store_dir().clone(),
        ..ServerConfig::default()
    };
    let conn = ServerConnection::accept(stream, &config).await?;
    timer.idle();
    let session = Session {
        store: Arc::clone(&context.store),
        trust: Trust::Untrusted,
        settings,
        locations: Arc::clone(&context.locations),
        options: worker_protocol::ops::ClientOptions { max_build_jobs: context.settings.max_jobs, ..Default::default() },
        restricted: Some(restriction),
        path_infos: Default::default(),
    };
    // Ends with the build (its daemon shuts the connection down), not with the daemon.
    let (_never, stopping) = tokio::sync::watch::channel(false);
    serve_requests(conn, session, &timer, stopping).await
}

/// Serves requests until the client leaves (or, between requests, the daemon stops).
async fn serve_requests<R, W>(
    mut conn: ServerConnection<R, W>,
    mut session: Session,
    timer: &crate::timeout::RequestTimer,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut served = 0u64;
    loop {
        // Between requests a stopping daemon closes the connection; a request being served
        // is finished first.
        let request = tokio::select! {
            request = conn.next_request() => request?,
            _ = stopping.wait_for(|s| *s) => {
                tracing::debug!("closing an idle connection: the daemon is stopping");
                return Ok(());
            }
        };
        let Some(request) = request else { break };
        let op = request.opcode();
        served += 1;
        let span = tracing::debug_span!("op", ?op);
        match ops::perform(&mut session, &mut conn, request).instrument(span).await {
            Ok(()) => {}
            Err(OpError::Client(message)) => {
                tracing::debug!(?op, %message, "operation failed");
                conn.fail(&RemoteError::new(message)).await?;
            }
            Err(OpError::Remote(error)) => {
                tracing::debug!(?op, message = %error.message, "operation failed");
                conn.fail(&error).await?;
            }
            Err(OpError::Connection(e)) => return Err(e.into()),
        }
        timer.idle();
    }
    tracing::debug!(served, "client closed the connection");
    Ok(())
}
