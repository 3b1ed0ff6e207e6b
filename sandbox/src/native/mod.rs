//! The `native` backend (design decision 5): each build runs in new user, mount, PID, IPC, UTS
//! and (unless fixed-output) network namespaces, in a root made of exactly its input closure
//! (read-only) and Nix's few extras, entered with `pivot_root`, without capabilities, under
//! Nix's seccomp filter. The daemon is multi-threaded, so the namespaces are made by
//! single-threaded processes: a zygote ([`zygote`], the helper `casnix-build-sandbox`
//! ([`helper`]) started once) forks one for each build, which the backend sends the
//! [`crate::plan::SandboxPlan`] ([`protocol`]) and supervises like the `none` backend
//! supervises its builder.

pub mod client;
pub mod confine;
pub mod expose;
pub mod helper;
pub mod protocol;
pub mod setup;
mod sys;
pub mod zygote;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::none::{line_reader, supervise_with, NoSandbox, Supervised};
use crate::plan::{plan, SandboxConfig};
use crate::prepare::{prepare, PreparedSandbox};
use crate::request::{Backend, BuildOutcome, BuildRequest, LogSink, SandboxError};
use crate::userpool::UserPool;
use client::Zygote;
use protocol::{HelperRequest, NO_NAMESPACES, SETUP_ERROR, STATUS, UNSHARED};

/// The helper's file name.
pub const HELPER_NAME: &str = "casnix-build-sandbox";

/// Runs builders in namespaces of their own.
#[derive(Debug, Clone)]
pub struct NativeSandbox {
    config: SandboxConfig,
    helper: PathBuf,
    helper_args: Vec<String>,
    users: Option<Arc<UserPool>>,
    zygote: Arc<Zygote>,
}

impl NativeSandbox {
    /// A backend with these settings, running the helper at `helper`.
    pub fn new(config: SandboxConfig, helper: PathBuf) -> Self {
        Self::with_helper(config, helper, Vec::new())
    }

    fn with_helper(config: SandboxConfig, helper: PathBuf, helper_args: Vec<String>) -> Self {
        let zygote = Zygote::shared(&helper, &helper_args);
        Self { config, helper, helper_args, users: None, zygote }
    }

    /// A backend whose helper is the running executable itself, which must call
    /// [`helper::dispatch`] first thing (as `casnix-daemon` does). It is run as
    /// `/proc/self/exe`: the very binary running, even once a newer one replaced it on disk.
    pub fn embedded(config: SandboxConfig) -> Result<Self, SandboxError> {
        Ok(Self::with_helper(config, PathBuf::from("/proc/self/exe"), vec![protocol::HELPER_ARG.to_owned()]))
    }

    /// The process id of the zygote this backend's builds are forked from, while it runs.
    pub fn zygote_pid(&self) -> Option<u32> {
        self.zygote.pid()
    }

    /// A backend whose helper is [`HELPER_NAME`] next to the running executable.
    pub fn beside_current_exe(config: SandboxConfig) -> Result<Self, SandboxError> {
        let exe = std::env::current_exe().map_err(SandboxError::io("finding the current executable"))?;
        let helper = exe.parent().unwrap_or(Path::new("/")).join(HELPER_NAME);
        Ok(Self::new(config, helper))
    }

    /// Runs each builder as a free member of `pool` (Nix's build users; the daemon must be
    /// root) instead of as the daemon's own user.
    pub fn with_build_users(mut self, pool: Arc<UserPool>) -> Self {
        self.users = Some(pool);
        self
    }

    /// The settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    fn setup_error(message: impl Into<String>) -> SandboxError {
        SandboxError::Setup(message.into())
    }

    fn run(&self, sandbox: &PreparedSandbox, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError> {
        let helper_request = HelperRequest {
            plan: sandbox.plan.clone(),
            builder: request.derivation.builder.clone(),
            args: sandbox.env.args.clone(),
            env: sandbox.env.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let mut encoded = serde_json::to_vec(&helper_request).map_err(|e| Self::setup_error(e.to_string()))?;
        encoded.push(b'\n');
        let started = self.zygote.start_build()?;
        let lines = line_reader(started.log);
        let mut build = ZygoteBuild { pid: 0, from_helper: BufReader::new(started.control), setup_error: None };
        let handshake = (|| -> Result<u32, SandboxError> {
            build.from_helper.get_ref().write_all(&encoded).map_err(SandboxError::io("sending the sandbox plan"))?;
            let mut line = String::new();
            build.from_helper.read_line(&mut line).map_err(SandboxError::io("reading from the sandbox helper"))?;
            if let Some(message) = line.strip_prefix(SETUP_ERROR) {
                return Err(Self::setup_error(message.trim_end()));
            }
            if line.is_empty() {
                return Err(Self::setup_error(ZygoteBuild::GONE));
            }
            let pids: Option<(u32, u32)> = line
                .strip_prefix(UNSHARED)
                .and_then(|pids| pids.trim_end().split_once(' '))
                .and_then(|(own, first)| Some((own.parse().ok()?, first.parse().ok()?)));
            let (own, first) = pids.ok_or_else(|| Self::setup_error(format!("unexpected answer from the sandbox helper: {line:?}")))?;
            build.pid = own;
            Ok(first)
        })();
        let first = match handshake {
            Ok(first) => first,
            Err(e) => {
                // Closing the control channel ends a build's process still waiting for the
                // request; a known one is killed too.
                build.kill();
                return Err(e);
            }
        };
        request.live.set(Some(Arc::new(expose::NativeExposer {
            helper: self.helper.clone(),
            helper_args: self.helper_args.clone(),
            pid: first,
            root: sandbox.plan.root.clone(),
            store_dir: sandbox.plan.store_dir.clone(),
        })));
        let outcome = supervise_with(&mut build, lines, log, request, &|_| {});
        request.live.set(None);
        if let Some(message) = build.setup_error.take() {
            return Err(Self::setup_error(message));
        }
        outcome
    }
}

/// A build's process (forked by the zygote) as [`supervise_with`] sees it.
struct ZygoteBuild {
    /// Its process id (on the host), once it said it.
    pid: u32,
    from_helper: BufReader<UnixStream>,
    /// What it said when the sandbox could not be set up.
    setup_error: Option<String>,
}

impl ZygoteBuild {
    const GONE: &'static str = "the build's sandbox process ended without a word (was the sandbox zygote killed?)";

    fn kill(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Supervised for ZygoteBuild {
    fn id(&self) -> u32 {
        self.pid
    }

    /// Reads the control channel until the status line.
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        loop {
            let mut line = String::new();
            if self.from_helper.read_line(&mut line)? == 0 {
                if self.setup_error.is_some() {
                    return Ok(std::process::ExitStatus::from_raw(125 << 8));
                }
                return Err(std::io::Error::other(Self::GONE));
            }
            if let Some(message) = line.strip_prefix(SETUP_ERROR) {
                self.setup_error = Some(message.trim_end().to_owned());
            } else if let Some(status) = line.strip_prefix(STATUS).and_then(|s| s.trim_end().parse().ok()) {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
        }
    }
}

impl Backend for NativeSandbox {
    fn name(&self) -> &'static str {
        "native"
    }

    fn build(&self, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError> {
        // Held until the build is over.
        let build_user = self.users.as_ref().map(|pool| pool.acquire()).transpose()?;
        let mut config = self.config.clone();
        if let Some(user) = &build_user {
            config.host_ids = user.ids;
        }
        let Some(mut plan) = plan(request, &config).map_err(|e| SandboxError::Unsupported(e.to_string()))? else {
            // `sandbox = relaxed` lets this one run on the host.
            return NoSandbox::fallback(self.users.as_ref()).build(request, log);
        };
        plan.skeleton_in_tmpfs = true;
        let started = std::time::Instant::now();
        let mut sandbox = prepare(request, plan)?;
        sandbox.remove_in_background();
        let prepared = started.elapsed();
        let result = match self.run(&sandbox, request, log) {
            // As Nix's `sandbox-fallback`: the builder has not started, so it can run unsandboxed.
            Err(SandboxError::Setup(message)) if config.fallback && message.starts_with(NO_NAMESPACES) => {
                tracing::debug!("auto-disabling sandboxing because the prerequisite namespaces are not available");
                drop(sandbox);
                return NoSandbox::fallback(self.users.as_ref()).build(request, log);
            }
            other => other,
        };
        match result {
            Ok(BuildOutcome::Success) => sandbox.move_outputs()?,
            _ if request.keep_failed => {
                let kept = sandbox.keep_build_dir();
                log.line(format!("note: keeping build directory '{}'", kept.display()).as_bytes());
            }
            _ => {}
        }
        let ran = started.elapsed();
        drop(sandbox);
        tracing::debug!(
            prepare_ms = prepared.as_secs_f64() * 1e3,
            run_ms = (ran - prepared).as_secs_f64() * 1e3,
            teardown_ms = (started.elapsed() - ran).as_secs_f64() * 1e3,
            "sandboxed build of '{}'",
            request.drv_base_name
        );
        result
    }
}
