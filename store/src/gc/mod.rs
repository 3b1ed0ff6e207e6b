//! Garbage collection in Nix's manner (Nix 2.26, `gc.cc`): roots ([`roots`]) and the collector
//! ([`collect`]).
//!
//! Roots are symlinks (and files named like store paths) under `<state>/gcroots` and
//! `<state>/profiles`, indirect roots (a link in `gcroots/auto` to a link into the store), and
//! the temporary roots of live processes (`temproots/<pid>`). Runtime roots (Nix's `/proc`
//! scan) are not looked for.
//!
//! The collector holds `gc.lock` exclusively while it runs; adds take it shared for a moment
//! to record their temporary roots, so they wait for the collector (casnix does not serve
//! `gc-socket` yet).

pub mod add_roots;
pub mod collect;
pub mod roots;

pub use collect::{GcAction, GcOptions, GcResult};
pub use roots::Roots;
