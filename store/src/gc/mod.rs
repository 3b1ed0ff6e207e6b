//! Garbage collection in Nix's manner (Nix 2.26, `gc.cc`): roots ([`roots`], with
//! [`runtime_roots`]), the collector ([`collect`]), the store directory's other entries
//! ([`entries`]), and the roots server the collector runs ([`root_server`]).
//!
//! Roots are symlinks (and files named like store paths) under `<state>/gcroots` and
//! `<state>/profiles`, indirect roots (a link in `gcroots/auto` to a link into the store), the
//! store paths running processes use (`/proc`), and the temporary roots of live processes and
//! `Store`s (`temproots/<pid>`, `temproots/<pid>-<n>`).
//!
//! The collector holds `gc.lock` exclusively while it runs; adds take it shared for a moment to
//! record their temporary roots, and while the collector holds it they send the root to its
//! `gc-socket` instead (as Nix's processes do), so no add waits for a collection to end.

pub mod add_roots;
pub mod collect;
mod entries;
mod links;
pub(crate) mod root_server;
pub mod roots;
pub(crate) mod runtime_roots;

pub use collect::{GcAction, GcOptions, GcResult};
pub use roots::Roots;
