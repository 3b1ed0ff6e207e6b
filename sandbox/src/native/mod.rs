//! The `native` backend (design decision 5): each build runs in new user, mount, PID, IPC, UTS
//! and (unless fixed-output) network namespaces, in a root made of exactly its input closure
//! (read-only) and Nix's few extras, entered with `pivot_root`, without capabilities, under
//! Nix's seccomp filter. The daemon is multi-threaded, so the namespaces are made by a
//! single-threaded helper, `casnix-build-sandbox` ([`helper`]), which the backend runs with the
//! [`crate::plan::SandboxPlan`] and supervises like the `none` backend supervises its builder.

pub mod confine;
pub mod expose;
pub mod helper;
pub mod protocol;
pub mod setup;
mod sys;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::none::{line_reader, supervise, NoSandbox};
use crate::plan::{plan, SandboxConfig, SandboxPlan};
use crate::prepare::{prepare, PreparedSandbox};
use crate::request::{Backend, BuildOutcome, BuildRequest, LogSink, SandboxError};
use crate::userpool::UserPool;
use protocol::{HelperRequest, GO, NO_NAMESPACES, SETUP_ERROR, UNSHARED};

/// The helper's file name.
pub const HELPER_NAME: &str = "casnix-build-sandbox";

/// Runs builders in namespaces of their own.
#[derive(Debug, Clone)]
pub struct NativeSandbox {
    config: SandboxConfig,
    helper: PathBuf,
    helper_args: Vec<String>,
    users: Option<Arc<UserPool>>,
}

impl NativeSandbox {
    /// A backend with these settings, running the helper at `helper`.
    pub fn new(config: SandboxConfig, helper: PathBuf) -> Self {
        Self { config, helper, helper_args: Vec::new(), users: None }
    }

    /// A backend whose helper is the running executable itself, which must call
    /// [`helper::dispatch`] first thing (as `casnix-daemon` does).
    pub fn embedded(config: SandboxConfig) -> Result<Self, SandboxError> {
        let exe = std::env::current_exe().map_err(SandboxError::io("finding the current executable"))?;
        Ok(Self { config, helper: exe, helper_args: vec![protocol::HELPER_ARG.to_owned()], users: None })
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

    /// Writes the id maps of the helper's user namespace (the helper has created it).
    fn write_id_maps(pid: u32, plan: &SandboxPlan) -> Result<(), SandboxError> {
        let lines = |maps: &[crate::plan::IdMap]| {
            maps.iter().map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count)).collect::<String>()
        };
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let write = |name: &str, contents: String| {
            std::fs::write(proc.join(name), contents).map_err(SandboxError::io(format!("writing /proc/{pid}/{name}")))
        };
        write("uid_map", lines(&plan.uid_map))?;
        write("setgroups", "deny".into())?;
        write("gid_map", lines(&plan.gid_map))
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
        let (reader, writer) = std::io::pipe().map_err(SandboxError::io("creating the log pipe"))?;
        let mut command = Command::new(&self.helper);
        command
            .args(&self.helper_args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(writer)
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(SandboxError::io(format!("running the sandbox helper '{}'", self.helper.display())))?;
        drop(command);
        let lines = line_reader(reader);
        let (Some(mut to_helper), Some(from_helper)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Self::setup_error("the sandbox helper has no pipes"));
        };
        let mut from_helper = BufReader::new(from_helper);
        let handshake = (|| -> Result<(), SandboxError> {
            to_helper.write_all(&encoded).map_err(SandboxError::io("sending the sandbox plan"))?;
            let mut line = String::new();
            from_helper.read_line(&mut line).map_err(SandboxError::io("reading from the sandbox helper"))?;
            if let Some(message) = line.strip_prefix(SETUP_ERROR) {
                return Err(Self::setup_error(message.trim_end()));
            }
            if line.trim_end() != UNSHARED {
                return Err(Self::setup_error(format!("unexpected answer from the sandbox helper: {line:?}")));
            }
            Self::write_id_maps(child.id(), &sandbox.plan)?;
            writeln!(to_helper, "{GO}").map_err(SandboxError::io("starting the sandbox"))?;
            Ok(())
        })();
        drop(to_helper);
        if let Err(e) = handshake {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        request.live.set(Some(Arc::new(expose::NativeExposer {
            helper: self.helper.clone(),
            helper_args: self.helper_args.clone(),
            pid: child.id(),
            root: sandbox.plan.root.clone(),
            store_dir: sandbox.plan.store_dir.clone(),
        })));
        let outcome = supervise(child, lines, log, request);
        request.live.set(None);
        let outcome = outcome?;
        let mut rest = String::new();
        let _ = from_helper.read_to_string(&mut rest);
        if let Some(message) = rest.lines().find_map(|l| l.strip_prefix(SETUP_ERROR)) {
            return Err(Self::setup_error(message));
        }
        Ok(outcome)
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
        let Some(plan) = plan(request, &config).map_err(|e| SandboxError::Unsupported(e.to_string()))? else {
            // `sandbox = relaxed` lets this one run on the host.
            return NoSandbox::fallback(self.users.as_ref()).build(request, log);
        };
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
