//! casnix's builders (design decision 5): a build is a store-agnostic [`BuildRequest`] (the
//! derivation, where its outputs go, the input closure), which a [`Backend`] runs.
//!
//! - [`request`]: the request, the outcome, the [`Backend`] trait;
//! - [`env`]: the builder's environment as Nix sets it (`passAsFile`, structured attributes);
//! - [`builtin`]: Nix's builtin builders (`buildenv`, `fetchurl`);
//! - [`none`]: the `none` backend (`sandbox = false`): the builder runs on the host;
//! - [`plan`]: the sandbox a build gets, whatever backend makes it;
//! - [`prepare`]: setting a plan up on the host, and moving the outputs out afterwards;
//! - [`native`]: the `native` backend (namespaces, `pivot_root`, seccomp, no capabilities);
//! - [`oci`]: the `oci` backend: a plan as an OCI bundle that `runc` runs;
//! - [`userpool`]: Nix's build users (`build-users-group`) for a daemon running as root.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod builtin;
pub mod env;
pub mod native;
pub mod none;
pub mod oci;
pub mod plan;
pub mod prepare;
pub mod request;
pub mod userpool;

pub use native::NativeSandbox;
pub use none::NoSandbox;
pub use oci::OciBackend;
pub use request::{Backend, BuildDirHook, BuildDirInfo, BuildOutcome, BuildRequest, Cancellation, LiveSandbox, LogSink, PathExposer, SandboxError};
