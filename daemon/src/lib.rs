//! casnix-daemon: a drop-in replacement for `nix-daemon`.
//!
//! Unmodified Nix clients connect to its unix socket (or run it with `--stdio`) and speak
//! Nix's worker protocol ([`worker_protocol`]); every operation is served from casnix's store
//! ([`store`]). The daemon is thin glue:
//! - [`settings`]: `nix.conf` and its keys; [`locations`]: directories, socket, `--store`;
//! - [`listen`]: the socket (or systemd's), accepting, signals; [`peer`]: trust by peer
//!   credentials;
//! - [`session`]: one connection; [`ops`]: one operation each, answered as Nix 2.26 does;
//! - [`build`]: realising derivations with a [`sandbox`] backend;
//! - [`bridge`]: store work on the connection's thread, fed from and to the async connection;
//! - [`timeout`]: dropping clients that stall mid-request or stop reading;
//! - [`store_mount`]: a read-only store mount made writable for the daemon (NixOS);
//! - [`version`]: the version string clients see.

#![cfg_attr(test, allow(clippy::unwrap_used))]
// `store::StoreError` is large; it is made once per failed request, never in a hot loop.
#![allow(clippy::result_large_err)]

pub mod bridge;
pub mod busy_poll;
pub mod build;
pub mod listen;
pub mod locations;
pub mod ops;
pub mod path_info_cache;
pub mod peer;
pub mod session;
pub mod settings;
pub mod store_mount;
pub mod timeout;
pub mod version;
