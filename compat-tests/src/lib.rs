//! Differential tests of a Nix store daemon: each scenario runs the same client commands (Nix 2.8
//! on the host and Nix 2.26 in a Debian trixie root, as root and as an untrusted user) against
//! Nix's `nix-daemon` and against the daemon under test, one after the other on the same store
//! path, and compares exit codes, stdout (text, JSON, bytes) and stderr after normalising what
//! legitimately differs (process ids, times, the daemon's version).
//!
//! The daemon under test is `CASNIX_DAEMON`, else this workspace's `casnix-daemon` (built when
//! missing). `CASNIX_DAEMON=/usr/bin/nix-daemon` compares Nix with itself.
//!
//! This crate is test support: a broken environment (a missing tool, an unwritable directory) is
//! a failed test, so its helpers panic with context instead of returning errors.

pub mod client;
pub mod daemon;
pub mod diff;
pub mod env;
pub mod held_open;
pub mod normalise;
pub mod outcome;
pub mod scenario;
pub mod session;
pub mod user;

pub use client::{Client, ClientKind, User};
pub use daemon::{Daemon, DaemonKind};
pub use env::Env;
pub use outcome::{Record, StdoutMode};
pub use scenario::Scenario;
pub use session::{Outcome, Session, Step};

/// The value of `result`, or a panic naming `what` failed (the harness's failure mode).
pub(crate) fn must<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}
