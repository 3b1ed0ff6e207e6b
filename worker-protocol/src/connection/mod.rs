//! Connections: the worker protocol's operations over any tokio `AsyncRead` + `AsyncWrite`.
//!
//! - [`ServerConnection`]: the daemon's side. After the handshake it yields typed requests
//!   ([`ServerConnection::next_request`]), gives the request's payload as an `AsyncRead`
//!   ([`ServerConnection::payload`]: a framed stream, a NAR inline, or data pulled from the client
//!   with `STDERR_READ`), sends log messages through its [`crate::logger::ServerLogger`], and
//!   answers with a typed reply ([`ServerConnection::respond`]), an error
//!   ([`ServerConnection::fail`]), a raw NAR ([`ServerConnection::nar_reply`]) or exported data
//!   ([`ServerConnection::export_writer`]). Payload bytes the server leaves unread are skipped
//!   before the reply, so the connection stays in step.
//! - [`ClientConnection`]: the client's side, one method per operation. Each sends the request
//!   and its payload (framed from 1.23/1.25, answered `STDERR_READ`s or a NAR inline for older
//!   daemons), hands the daemon's log messages to a [`crate::logger::LogSink`], and returns the
//!   typed reply. A daemon's error comes back as [`crate::ProtocolError::Remote`] and leaves the
//!   connection usable; errors that leave it out of step make every later call fail with
//!   [`crate::ProtocolError::ConnectionBroken`].
//!
//! ```
//! use std::collections::BTreeSet;
//! use worker_protocol::connection::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
//! use worker_protocol::ops::{Request, Response};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (client_end, server_end) = tokio::io::duplex(1 << 16);
//! let server = tokio::spawn(async move {
//!     let mut conn = ServerConnection::accept(server_end, &ServerConfig::default()).await?;
//!     while let Some(request) = conn.next_request().await? {
//!         match request {
//!             Request::QueryAllValidPaths(_) => conn.respond(&Response::QueryAllValidPaths(BTreeSet::new())).await?,
//!             _ => conn.fail(&worker_protocol::logger::RemoteError::new("not here")).await?,
//!         }
//!     }
//!     Ok::<(), worker_protocol::ProtocolError>(())
//! });
//! let mut client = ClientConnection::from_stream(client_end, &ClientConfig::default()).await?;
//! assert!(client.query_all_valid_paths().await?.is_empty());
//! drop(client);
//! server.await.unwrap()?;
//! # Ok::<(), worker_protocol::ProtocolError>(())
//! # }).unwrap();
//! ```

mod client;
mod server;

pub use client::{ClientConnection, DiscardLogs, UnixClientConnection};
pub use server::{ExportWriter, PayloadReader, ServerConnection};

use nix_formats::store_path::StoreDir;

use crate::handshake::WorkerConfig;
use crate::types::ClientHandshakeInfo;

/// How a [`ServerConnection`] introduces itself and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Versions, features and limits for the handshake and everything after it.
    pub worker: WorkerConfig,
    /// The version string and trust decision sent to the client.
    pub info: ClientHandshakeInfo,
    /// Messages sent to the client at the end of the handshake.
    pub startup_messages: Vec<String>,
    /// The store directory that paths are parsed against and printed with.
    pub store_dir: StoreDir,
    /// The bounds on NARs that arrive inline.
    pub nar_limits: nix_formats::nar::Limits,
}

impl Default for ServerConfig {
    /// The default handshake settings, the version string `casnix <version>` (clients from 1.33
    /// require one), trust unknown, no startup messages, `/nix/store`, default NAR limits.
    fn default() -> Self {
        Self {
            worker: WorkerConfig::default(),
            info: ClientHandshakeInfo {
                daemon_nix_version: Some(concat!("casnix ", env!("CARGO_PKG_VERSION")).to_owned()),
                remote_trusts_us: None,
            },
            startup_messages: Vec::new(),
            store_dir: StoreDir::default(),
            nar_limits: nix_formats::nar::Limits::default(),
        }
    }
}

/// What a [`ClientConnection`] offers and accepts.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// Versions, features and limits for the handshake and everything after it.
    pub worker: WorkerConfig,
    /// The store directory that paths are parsed against and printed with.
    pub store_dir: StoreDir,
    /// The bounds on NARs the daemon sends (`NarFromPath`) and on NARs checked before sending.
    pub nar_limits: nix_formats::nar::Limits,
}
