//! What the backend, the zygote and the zygote's per-build processes say to each other.
//!
//! The backend starts the zygote once (the helper with [`ZYGOTE_ARG`]; its stdin is one end of
//! a unix socket pair). For each build, the backend sends the zygote one byte carrying two
//! descriptors (`SCM_RIGHTS`): one end of a fresh socket pair (the build's control channel)
//! and the write end of the build's log pipe. The zygote forks a process for the build and
//! forgets both.
//!
//! On the control channel, the backend writes a [`HelperRequest`] as one JSON line. The build's
//! process forks the sandbox's first process into new namespaces, writes their id maps (from
//! outside, as Nix's parent does), and writes [`UNSHARED`] followed by its own process id (its
//! process group is the build's) and the first process's (whose namespaces are the sandbox's).
//! It reports a failure to set the sandbox up as one line starting with [`SETUP_ERROR`];
//! otherwise, once the sandbox's first process is gone, it writes [`STATUS`] followed by that
//! process's raw wait status. The builder's output goes to the log pipe, which closes when the
//! last process of the sandbox ends.

use serde::{Deserialize, Serialize};

use crate::plan::SandboxPlan;

/// The start of the build process's line once the sandbox's namespaces exist (then its own
/// process id and the sandbox's first process's, separated by a space).
pub const UNSHARED: &str = "unshared ";
/// The start of the build process's last line: the builder's raw wait status follows.
pub const STATUS: &str = "status ";
/// The start of the helper's line when the sandbox could not be set up.
pub const SETUP_ERROR: &str = "setup-error: ";
/// How a setup error starts when the kernel refused the namespaces (after [`SETUP_ERROR`]).
pub const NO_NAMESPACES: &str = "no namespaces: ";
/// The argument that makes another program embedding the helper (`casnix-daemon`) act as it:
/// see [`super::helper::dispatch`].
pub const HELPER_ARG: &str = "--casnix-build-sandbox";
/// The argument (after [`HELPER_ARG`], if embedded) that starts the zygote.
pub const ZYGOTE_ARG: &str = "--zygote";

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
