//! The `oci` backend (`sandbox-backend = oci`): each build is an OCI runtime bundle run by
//! `runc` (design decision 5). The sandbox is the build's [`SandboxPlan`], as for the
//! `native` backend; here runc makes it.
//!
//! - [`config`]: `config.json` from a [`config::ContainerSpec`];
//! - [`seccomp`]: the plan's seccomp rules in OCI's format;
//! - [`bundle`]: the plan's root prepared on the host, and its container spec;
//! - [`runc`]: running, killing and deleting containers.

pub mod bundle;
pub mod config;
pub mod runc;
pub mod seccomp;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::none::{NoSandbox, line_reader, supervise_with};
use crate::plan::{SandboxConfig, SandboxPlan};
use crate::prepare::{PreparedSandbox, prepare};
use crate::request::{Backend, BuildOutcome, BuildRequest, LogSink, SandboxError};
use crate::userpool::UserPool;
use bundle::IdMode;
use runc::Runc;

/// Runs builds in runc containers.
#[derive(Debug, Clone)]
pub struct OciBackend {
    runc: Runc,
    config: SandboxConfig,
    ids: IdMode,
    users: Option<Arc<UserPool>>,
}

impl OciBackend {
    /// The backend with runc's state under `state_dir` (casnix's, such as
    /// `<state dir>/oci`), containers left by a casnix process that died removed. Fails when
    /// runc is not installed.
    pub fn new(state_dir: &Path, config: SandboxConfig) -> Result<Self, SandboxError> {
        let ids = IdMode::current();
        let runc = Runc::locate(state_dir, ids == IdMode::Rootless)?;
        runc.remove_stale();
        Ok(Self { runc, config, ids, users: None })
    }

    /// The backend with the given runc binary (see [`OciBackend::new`]).
    pub fn with_runc(runc_binary: PathBuf, state_dir: &Path, config: SandboxConfig) -> Result<Self, SandboxError> {
        let ids = IdMode::current();
        let runc = Runc::with_binary(runc_binary, state_dir, ids == IdMode::Rootless)?;
        runc.remove_stale();
        Ok(Self { runc, config, ids, users: None })
    }

    /// Runs each builder as a free member of `pool` (Nix's build users; the daemon must be
    /// root): the build user is the builder's host identity, mapped to uid 1000 inside.
    pub fn with_build_users(mut self, pool: Arc<UserPool>) -> Self {
        self.users = Some(pool);
        self
    }

    /// The runc used.
    pub fn runc(&self) -> &Runc {
        &self.runc
    }
}

impl Backend for OciBackend {
    fn name(&self) -> &'static str {
        "oci"
    }

    fn build(&self, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError> {
        // Held until the build is over.
        let build_user = self.users.as_ref().map(|pool| pool.acquire()).transpose()?;
        let mut config = self.config.clone();
        if let Some(user) = &build_user {
            config.host_ids = user.ids;
        }
        let Some(plan) = crate::plan::plan(request, &config).map_err(|e| SandboxError::Unsupported(e.to_string()))?
        else {
            // `sandbox = relaxed` and a derivation that may run outside.
            return NoSandbox::fallback(self.users.as_ref()).build(request, log);
        };
        let mut prepared = prepare(request, plan)?;
        let result = self.run_prepared(&prepared, request, log);
        if bundle::has_mounts_under(&prepared.plan.chroot_dir) {
            // Never delete through a mount (it could be the store): leave it all in place.
            tracing::error!(dir = %prepared.plan.chroot_dir.display(), "file systems still mounted in a chroot; leaving it");
            std::mem::forget(prepared);
            return result;
        }
        if !matches!(result, Ok(BuildOutcome::Success)) && request.keep_failed {
            let kept = prepared.keep_build_dir();
            log.line(format!("note: keeping build directory '{}'", kept.display()).as_bytes());
        }
        result
    }
}

impl OciBackend {
    fn run_prepared(
        &self,
        prepared: &PreparedSandbox,
        request: &BuildRequest,
        log: &mut dyn LogSink,
    ) -> Result<BuildOutcome, SandboxError> {
        let plan = &prepared.plan;
        bundle::adapt_root(plan, self.ids)?;
        let mut args = vec![request.derivation.builder.clone()];
        args.extend(prepared.env.args.iter().cloned());
        let env = prepared.env.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let spec = bundle::container_spec(plan, self.ids, args, env)?;
        config::write(&plan.chroot_dir, &spec)?;
        let outcome = self.run(plan, request, log)?;
        if outcome == BuildOutcome::Success {
            prepared.move_outputs()?;
        }
        Ok(outcome)
    }

    fn run(
        &self,
        plan: &SandboxPlan,
        request: &BuildRequest,
        log: &mut dyn LogSink,
    ) -> Result<BuildOutcome, SandboxError> {
        let id = Runc::fresh_id();
        let runc_log = plan.chroot_dir.join("runc.log");
        let (reader, writer) = std::io::pipe().map_err(SandboxError::io("creating the log pipe"))?;
        let mut child = self.runc.spawn_run(&id, &plan.chroot_dir, &runc_log, writer)?;
        let lines = line_reader(reader);
        let runc = &self.runc;
        let outcome = supervise_with(&mut child, lines, log, request, &|_| runc.kill(&id));
        self.runc.delete(&id);
        let outcome = outcome?;
        // runc exits with 1 after failing to start the container, and with the builder's
        // status otherwise (128 + n after signal n: not told apart from an exit code).
        if let BuildOutcome::Failed(_) = outcome {
            if let Some(errors) = runc::runc_errors(&runc_log) {
                return Err(SandboxError::Setup(format!("runc could not run the builder: {errors}")));
            }
        }
        Ok(outcome)
    }
}
