//! What the backend and its helper process (`casnix-build-sandbox`) say to each other.
//!
//! The backend writes a [`HelperRequest`] as one JSON line on the helper's stdin. The helper
//! creates its namespaces and writes [`UNSHARED`] on its stdout; the backend then writes the
//! user namespace's id maps (from outside, as Nix's parent does) and writes [`GO`] on the
//! helper's stdin. The helper reports a failure to set the sandbox up as one line starting with
//! [`SETUP_ERROR`] on its stdout; otherwise it ends as the builder ended (same exit code, or
//! killed by the same signal). The builder's output goes to the helper's stderr.

use serde::{Deserialize, Serialize};

use crate::plan::SandboxPlan;

/// The helper's line once its namespaces exist.
pub const UNSHARED: &str = "unshared";
/// The backend's line once the id maps are written.
pub const GO: &str = "go";
/// The start of the helper's line when the sandbox could not be set up.
pub const SETUP_ERROR: &str = "setup-error: ";
/// How a setup error starts when the kernel refused the namespaces (after [`SETUP_ERROR`]).
pub const NO_NAMESPACES: &str = "no namespaces: ";
/// The argument that makes another program embedding the helper (`casnix-daemon`) act as it:
/// see [`super::helper::dispatch`].
pub const HELPER_ARG: &str = "--casnix-build-sandbox";

/// One build for the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelperRequest {
    /// The sandbox.
    pub plan: SandboxPlan,
    /// The builder's path (inside the sandbox).
    pub builder: Vec<u8>,
    /// Its arguments (without `argv[0]`).
    pub args: Vec<Vec<u8>>,
    /// Its environment.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}
