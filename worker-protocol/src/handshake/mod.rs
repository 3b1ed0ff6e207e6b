//! The handshakes that open a connection, both sides, for the worker and serve protocols.
//!
//! Worker protocol, as Nix 2.26 does it:
//! 1. The client sends magic 1 and its version. (Nix ≥ 2.24 sends both in one write; older
//!    clients send the magic alone and wait for the server's reply first. The server here answers
//!    as soon as it has the magic, so either works.)
//! 2. The server answers with magic 2 and its version; both use the lower of the two versions.
//! 3. From 1.38, the client sends its feature set, then the server sends its own; both use the
//!    intersection.
//! 4. The client sends the obsolete CPU affinity (from 1.14: 0, or 1 and a value) and
//!    reserve-space flag (from 1.11).
//! 5. The server sends its Nix version string (from 1.33) and whether it trusts the client
//!    (from 1.35), then any startup messages (`STDERR_NEXT`) and `STDERR_LAST`.
//!
//! The serve protocol has steps 1 and 2 only, with its own magic numbers and major version 2.
//!
//! Differences from Nix, all stricter: a server here also refuses a client whose major version is
//! not its own (Nix's servers only check the client's), bits 16–31 of a version are ignored before
//! the versions are compared (see [`ProtocolVersion::from_wire`]), the oldest accepted version is
//! configurable ([`WorkerConfig::min_version`], 1.21 by default where Nix 2.26 accepts 1.10), and
//! a feature set may hold at most 1024 names of at most 1024 bytes.

mod serve;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::BTreeSet;

pub use serve::{serve_client_handshake, serve_server_handshake};
pub use worker::{
    client_handshake, client_negotiate, client_post_handshake, server_handshake, server_negotiate,
    server_post_handshake,
};

use crate::limits::Limits;
use crate::types::ClientHandshakeInfo;
use crate::version::{ProtocolVersion, WORKER_DEFAULT_MIN_VERSION, WORKER_MIN_VERSION, WORKER_PROTOCOL_VERSION};

/// One side's settings for a worker-protocol handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The newest version this side offers.
    pub version: ProtocolVersion,
    /// The oldest negotiated version this side accepts. Values below [`WORKER_MIN_VERSION`]
    /// (1.10, Nix's own floor) are treated as 1.10.
    pub min_version: ProtocolVersion,
    /// The protocol features this side supports (exchanged from 1.38; Nix 2.26 has none).
    pub features: BTreeSet<String>,
    /// Bounds on what the peer sends.
    pub limits: Limits,
}

impl Default for WorkerConfig {
    /// Version 1.38, accepting 1.21 and later, no features, default limits.
    fn default() -> Self {
        Self {
            version: WORKER_PROTOCOL_VERSION,
            min_version: WORKER_DEFAULT_MIN_VERSION,
            features: BTreeSet::new(),
            limits: Limits::DEFAULT,
        }
    }
}

impl WorkerConfig {
    /// The oldest version actually accepted: `min_version`, but never below 1.10.
    pub fn effective_min_version(&self) -> ProtocolVersion {
        self.min_version.max(WORKER_MIN_VERSION)
    }
}

/// What both sides agreed on in steps 1–3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The lower of the two versions.
    pub version: ProtocolVersion,
    /// The features both sides support (empty before 1.38).
    pub features: BTreeSet<String>,
}

/// What the server learns from the client in step 4. Both fields are obsolete; Nix ignores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientSettings {
    /// The CPU the client asked the server to run on, if any.
    pub cpu_affinity: Option<u64>,
    /// Whether the client asked the server to reserve disk space.
    pub reserve_space: bool,
}

/// The outcome of a whole server-side handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    /// The negotiated version and features.
    pub negotiated: Negotiated,
    /// The client's obsolete settings.
    pub client: ClientSettings,
}

/// The outcome of a whole client-side handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The negotiated version and features.
    pub negotiated: Negotiated,
    /// The daemon's version string and trust decision, as far as the version carries them.
    pub info: ClientHandshakeInfo,
    /// The messages the daemon sent before its first `STDERR_LAST`.
    pub startup_messages: Vec<String>,
}
