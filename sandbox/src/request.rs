//! What a backend is asked to do ([`BuildRequest`]), what it reports ([`BuildOutcome`]), and
//! the [`Backend`] trait. Requests are store-agnostic: real paths and a derivation, no
//! database (design decision 5).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use nix_formats::derivation::Derivation;

/// One build to run.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The derivation's base name (`<hash>-<name>.drv`), for the build directory's name.
    pub drv_base_name: String,
    /// The derivation (its builder, arguments, environment, outputs).
    pub derivation: Derivation,
    /// The logical store directory (`NIX_STORE`).
    pub store_dir: String,
    /// Where each output must be written (its place in the store directory on disk).
    pub outputs: BTreeMap<String, PathBuf>,
    /// The input closure, as real paths: what a sandbox exposes, read-only.
    pub inputs: BTreeSet<PathBuf>,
    /// Where build directories are created (`build-dir`, else `$TMPDIR`, else `/tmp`).
    pub build_dir_parent: PathBuf,
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    /// Whether the derivation is fixed-output: it may reach the network and gets
    /// `impureEnvVars` from the daemon's environment.
    pub fixed_output: bool,
    /// `impure-env`: values for `impureEnvVars` that win over the daemon's environment.
    pub impure_env: BTreeMap<String, String>,
    /// Kill the builder after this long (`timeout`).
    pub timeout: Option<Duration>,
    /// Kill the builder after this long without output (`max-silent-time`).
    pub max_silent_time: Option<Duration>,
    /// Keep the build directory after a failure (`keep-failed`).
    pub keep_failed: bool,
    /// More files for the build directory (such as `exportReferencesGraph`'s): name, contents.
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// Strings replaced in the environment, the arguments and the files written for the
    /// builder (Nix's `inputRewrites`; `--check` points outputs at scratch paths this way).
    pub rewrites: BTreeMap<Vec<u8>, Vec<u8>>,
    /// More structured attributes (such as `exportReferencesGraph`'s closures), added to
    /// `.attrs.json` and `.attrs.sh`.
    pub structured_extra: BTreeMap<String, serde_json::Value>,
    /// Called once the build directory exists, before the builder starts (recursive Nix puts
    /// its daemon socket there this way).
    pub on_build_dir: Option<BuildDirHook>,
    /// Set when the build is no longer wanted: the backend kills the builder and reports
    /// [`BuildOutcome::Cancelled`].
    pub cancel: Cancellation,
    /// Filled in by the backend while its builder runs, so paths can be added to the running
    /// sandbox (recursive Nix).
    pub live: LiveSandbox,
}

/// Adds a store path to a running sandbox.
pub trait PathExposer: Send + Sync {
    /// Makes `real_path` (a path in the store directory on the host) visible to the builder at
    /// its place in the store directory it sees.
    fn expose(&self, real_path: &std::path::Path) -> Result<(), SandboxError>;
}

/// A build's running sandbox, as far as store paths can be added to it while the builder runs
/// (Nix's `addDependency` for recursive Nix): shared by the backend, which sets it while its
/// builder runs, and whoever adds paths. Empty, adding does nothing: the `none` backend's
/// builder sees the whole store.
#[derive(Clone, Default)]
pub struct LiveSandbox(std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<dyn PathExposer>>>>);

impl std::fmt::Debug for LiveSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveSandbox")
    }
}

impl LiveSandbox {
    /// Sets (or, with `None`, clears) the running sandbox's exposer.
    pub fn set(&self, exposer: Option<std::sync::Arc<dyn PathExposer>>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = exposer;
    }

    /// Makes `real_path` visible in the running sandbox, if there is one.
    pub fn expose(&self, real_path: &std::path::Path) -> Result<(), SandboxError> {
        let exposer = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match exposer {
            Some(exposer) => exposer.expose(real_path),
            None => Ok(()),
        }
    }
}

/// A flag shared by whoever may give a build up and the backend running it (Nix kills the
/// builders of a request's other goals when one fails without `keep-going`).
#[derive(Debug, Clone, Default)]
pub struct Cancellation(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancellation {
    /// Gives up every build holding this flag (running builders are killed).
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`Cancellation::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Where a build directory is, for a [`BuildDirHook`].
#[derive(Debug, Clone, Copy)]
pub struct BuildDirInfo<'a> {
    /// The directory on the host.
    pub host: &'a std::path::Path,
    /// The directory as the builder sees it (`/build` in a sandbox).
    pub inside: &'a str,
    /// The user and group the builder runs as, when not the daemon's own.
    pub owner: Option<(u32, u32)>,
}

/// The function of a [`BuildDirHook`].
pub type BuildDirFn = dyn Fn(&BuildDirInfo<'_>) -> Result<BTreeMap<String, String>, SandboxError> + Send + Sync;

/// A function a backend calls with the build directory before starting the builder; it returns
/// more environment variables for the builder.
#[derive(Clone)]
pub struct BuildDirHook(
    /// The function.
    pub std::sync::Arc<BuildDirFn>,
);

impl std::fmt::Debug for BuildDirHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuildDirHook")
    }
}

impl BuildRequest {
    /// Runs [`BuildRequest::on_build_dir`], if any, adding the variables it returns to `vars`.
    pub fn run_build_dir_hook(
        &self,
        info: &BuildDirInfo<'_>,
        vars: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), SandboxError> {
        let Some(hook) = &self.on_build_dir else { return Ok(()) };
        for (name, value) in (hook.0)(info)? {
            vars.insert(name.into_bytes(), value.into_bytes());
        }
        Ok(())
    }
}

/// How a builder ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// It exited with status 0.
    Success,
    /// It exited with this non-zero status.
    Failed(i32),
    /// A signal killed it.
    Signalled(i32),
    /// It ran longer than the timeout.
    TimedOut(Duration),
    /// It was silent longer than `max-silent-time`.
    Silent(Duration),
    /// It was killed because the build was no longer wanted ([`Cancellation`]).
    Cancelled,
}

impl BuildOutcome {
    /// Nix's wording of how a failed builder ended (after "builder for '…' ").
    pub fn describe(&self) -> String {
        match self {
            Self::Success => "succeeded".to_owned(),
            Self::Failed(code) => format!("failed with exit code {code}"),
            Self::Signalled(sig) => format!("failed due to signal {sig}"),
            Self::TimedOut(d) => format!("timed out after {} seconds", d.as_secs()),
            Self::Silent(d) => format!("timed out after {} seconds of silence", d.as_secs()),
            Self::Cancelled => "was cancelled".to_owned(),
        }
    }
}

/// Receives the builder's output as it comes, line by line.
pub trait LogSink: Send {
    /// One line of output, without its line feed.
    fn line(&mut self, line: &[u8]);
}

impl<F: FnMut(&[u8]) + Send> LogSink for F {
    fn line(&mut self, line: &[u8]) {
        self(line)
    }
}

/// A failure to run a build (not the builder failing: see [`BuildOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Setting up or running failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The derivation cannot be built this way.
    #[error("{0}")]
    Unsupported(String),
    /// The sandbox could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl SandboxError {
    /// A closure turning an I/O error into [`SandboxError::Io`].
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Runs builders.
pub trait Backend: Send + Sync {
    /// The backend's name, as `nix.conf` names it.
    fn name(&self) -> &'static str;

    /// Runs the build: creates the build directory, writes what the environment needs into
    /// it, runs the builder with its output going to `log`, and removes the directory (unless
    /// kept). The outputs are left where [`BuildRequest::outputs`] says.
    fn build(&self, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError>;
}
