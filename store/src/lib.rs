//! casnix's store: the local Nix store on castore ([`local`]), and the path-info database
//! ([`db`]), kept in Nix's own SQLite schema so that Nix and casnix can take turns on the same
//! `/nix`.

// Tests fail loudly by design.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod db;
pub mod descriptors;
mod flock;
mod unix_socket;
pub mod gc;
pub mod local;
pub mod substitute;

pub use local::{Recovered, Store, StoreConfig, StoreError, TempRootsScope};
