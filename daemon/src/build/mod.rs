//! Realising derivations: the derivation graph walked inputs first, each output locked while
//! it is built (so two clients never build it twice), the builder run by a
//! [`sandbox::Backend`], outputs checked and registered ([`outputs`]), logs to the client and
//! to `$NIX_LOG_DIR` ([`log`]).
//!
//! Runs on the blocking pool (the store is synchronous); log messages reach the client through
//! [`crate::bridge::with_logs`].

pub mod ca;
pub mod check;
pub mod checks;
pub mod floating;
pub mod log;
pub mod outputs;
pub mod recursive;
pub mod resolve;
pub mod rewrite;
pub mod schedule;
pub mod substitute;
pub mod substitute_ca;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use nix_formats::build_result::{BuildResult, BuildStatus};
use nix_formats::derivation::{Derivation, DerivationType, InputOutputs};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;
use sandbox::{Backend, BuildOutcome, BuildRequest};
use store::db::ClosureOptions;
use store::local::PathLock;
use store::Store;
use worker_protocol::logger::{ActivityId, LogMessage};

use crate::bridge::LogTx;
use crate::ops::query::read_derivation;

/// Removes whatever is at each of `paths` (a builder's partial or stale outputs).
fn remove_present<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) {
    for path in paths {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => sandbox::none::remove_build_dir(path),
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
}

/// Nix 2.26's refusal of a derivation output that is the output of a derivation built first.
fn one_shot() -> BuildFailure {
    BuildFailure::misc("Building dynamic derivations in one shot is not yet implemented.")
}

/// How a build failed: the status, the message, and whether it was a hash mismatch or timeout
/// (for the exit status Nix's clients end with).
#[derive(Debug, Clone)]
pub struct BuildFailure {
    /// The status of the result.
    pub status: BuildStatus,
    /// The message.
    pub message: String,
}

impl BuildFailure {
    /// A failure that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { status: BuildStatus::PermanentFailure, message: message.into() }
    }

    /// A goal not started (or given up) because another failure ended the request without
    /// `keep-going` (Nix's cancelled goals: no message).
    pub fn cancelled() -> Self {
        Self::misc("")
    }

    /// Whether this is [`BuildFailure::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.status == BuildStatus::MiscFailure && self.message.is_empty()
    }

    /// Whether this failure is the whole request's error rather than one goal's (Nix's worker
    /// throws it: nothing can be built with `max-jobs = 0`).
    pub fn ends_request(&self) -> bool {
        self.message == schedule::NO_LOCAL_BUILDS
    }

    /// Any other failure.
    pub fn misc(message: impl Into<String>) -> Self {
        Self { status: BuildStatus::MiscFailure, message: message.into() }
    }

    /// A fixed output with the wrong hash.
    pub fn hash_mismatch(message: impl Into<String>) -> Self {
        Self { status: BuildStatus::OutputRejected, message: message.into() }
    }

    /// The exit status Nix's clients end with for this failure (`failingExitStatus`).
    pub fn exit_status(&self) -> u32 {
        match self.status {
            BuildStatus::TimedOut => 101,
            BuildStatus::OutputRejected if self.message.starts_with("hash mismatch") => 102,
            BuildStatus::NotDeterministic => 104,
            BuildStatus::PermanentFailure | BuildStatus::OutputRejected => 100,
            _ => 1,
        }
    }
}

/// The settings a build follows.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    /// `max-jobs` for this request (the client's, within the daemon's): builds run at once.
    pub max_jobs: u32,
    /// The system this machine builds for.
    pub system: String,
    /// Where build directories go.
    pub build_dir_parent: PathBuf,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `max-silent-time`.
    pub max_silent_time: Option<Duration>,
    /// `keep-failed`.
    pub keep_failed: bool,
    /// `keep-going`.
    pub keep_going: bool,
    /// `--check`: build the requested derivations again and compare with their valid outputs.
    pub check: bool,
    /// Whether the client sees build output itself (then the error omits the log tail).
    pub verbose_client: bool,
    /// Whether `nix-command` is enabled (a failed build's message then suggests `nix log`,
    /// else `nix-store -l`).
    pub nix_command: bool,
    /// `$NIX_LOG_DIR`.
    pub log_dir: PathBuf,
    /// The keys of `secret-key-files`: outputs are signed with each.
    pub secret_keys: Vec<nix_formats::signature::SecretKey>,
    /// `post-build-hook`: run after each successful build.
    pub post_build_hook: Option<String>,
    /// `impure-env` (`NAME=value` pairs).
    pub impure_env: BTreeMap<String, String>,
    /// The settings as `NIX_CONFIG` text, for the hook.
    pub nix_config: String,
    /// The experimental feature `ca-derivations`: realisations are recorded for every build.
    pub ca_derivations: bool,
    /// The experimental feature `impure-derivations`.
    pub impure_derivations: bool,
    /// The substituters tried before building (`None`: substitution is off).
    pub substituters: Option<std::sync::Arc<store::substitute::Substituters>>,
    /// `fallback`: build when substituting failed.
    pub fallback: bool,
    /// `auto-optimise-store`: off, outputs get private copies of files other paths share.
    pub auto_optimise: bool,
    /// What a recursive Nix daemon needs (derivations wanting `recursive-nix` get one).
    pub recursive: Option<recursive::RecursiveContext>,
}

/// What handling one derivation gave: how, and its outputs' paths.
#[derive(Debug, Clone)]
pub struct Built {
    /// The status of the result.
    pub status: BuildStatus,
    /// The path of each output.
    pub outputs: BTreeMap<String, StorePath>,
}

/// One realisation request's walk through the derivation graph.
pub struct Builder<'a> {
    store: &'a Store,
    backend: &'a dyn Backend,
    settings: &'a BuildSettings,
    log: LogTx,
    /// Results of derivations handled in this request (a derivation asked for while another
    /// thread handles it waits for that result).
    done: std::sync::Mutex<BTreeMap<StorePath, schedule::Outcome>>,
    /// Modulo hashes of the derivations read so far.
    hash_cache: std::sync::Mutex<nix_formats::derivation::DrvHashCache>,
    /// This request's job slots (`max-jobs` as the client set it).
    request_slots: schedule::JobSlots,
    /// Set when a failure ends the request (without `keep-going`): nothing new starts and
    /// running builders are killed.
    stopped: sandbox::Cancellation,
}

impl<'a> Builder<'a> {
    /// A builder for one request.
    pub fn new(store: &'a Store, backend: &'a dyn Backend, settings: &'a BuildSettings, log: LogTx) -> Self {
        Self {
            store,
            backend,
            settings,
            log,
            done: Default::default(),
            hash_cache: Default::default(),
            request_slots: schedule::JobSlots::new(settings.max_jobs as usize),
            stopped: Default::default(),
        }
    }

    fn print(&self, path: &StorePath) -> String {
        self.store.print(path)
    }

    /// Logs an error line to the client (as Nix logs failures of dependencies).
    fn log_error(&self, text: &str) {
        self.log.line(worker_protocol::logger::Verbosity::Error, crate::ops::other::error_text(text));
    }

    /// Realises `target`: a valid opaque path, or the wanted outputs of a derivation.
    pub fn realise(&self, target: &DerivedPath) -> Result<BuildResult, BuildFailure> {
        match target {
            DerivedPath::Opaque(path) => {
                if self.store.is_valid(path).map_err(|e| BuildFailure::misc(e.to_string()))? {
                    Ok(BuildResult::new(BuildStatus::AlreadyValid, ""))
                } else if self.substitute_opaque(path)? {
                    Ok(BuildResult::new(BuildStatus::Substituted, ""))
                } else {
                    Err(BuildFailure::misc(format!(
                        "path '{}' is required, but there is no substituter that can build it",
                        self.print(path)
                    )))
                }
            }
            DerivedPath::Built { drv_path, outputs } => {
                let SingleDerivedPath::Opaque(drv_path) = drv_path else { return Err(one_shot()) };
                let drv_path = drv_path.clone();
                self.check_wanted_outputs(&drv_path, outputs)?;
                let valid = match outputs {
                    OutputsSpec::Names(names) if !self.settings.check => self.wanted_valid(&drv_path, names)?,
                    _ => None,
                };
                let built = match valid {
                    Some(built) => built,
                    None => self.build_derivation(&drv_path)?,
                };
                if self.settings.check && built.status == BuildStatus::AlreadyValid {
                    self.check_derivation(&drv_path)?;
                }
                let mut result = BuildResult::new(built.status, "");
                result.built_outputs = self.built_outputs(&drv_path, &built, outputs)?;
                Ok(result)
            }
        }
    }

    /// Every wanted output must be an output of the derivation (Nix's "does not have wanted
    /// outputs").
    fn check_wanted_outputs(&self, drv_path: &StorePath, wanted: &OutputsSpec) -> Result<(), BuildFailure> {
        let OutputsSpec::Names(names) = wanted else { return Ok(()) };
        if !self.store.is_valid(drv_path).map_err(|e| BuildFailure::misc(e.to_string()))? {
            return Ok(());
        }
        let drv = read_derivation(self.store, drv_path).map_err(|e| BuildFailure::misc(e.to_string()))?;
        let missing: Vec<String> = names.iter().filter(|n| !drv.outputs.contains_key(*n)).map(|n| format!("'{n}'")).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(BuildFailure::misc(format!(
            "derivation '{}' does not have wanted outputs {}",
            self.print(drv_path),
            missing.join(", ")
        )))
    }

    /// The realisations of the wanted outputs (ids keyed by the derivation's output hashes).
    fn built_outputs(&self, drv_path: &StorePath, built: &Built, wanted: &OutputsSpec) -> Result<BTreeMap<String, Realisation>, BuildFailure> {
        let drv = read_derivation(self.store, drv_path).map_err(|e| BuildFailure::misc(e.to_string()))?;
        self.realisations(&drv, built, wanted)
    }

    /// The realisations of `built`'s wanted outputs (ids keyed by `drv`'s output hashes).
    pub fn realisations(&self, drv: &Derivation, built: &Built, wanted: &OutputsSpec) -> Result<BTreeMap<String, Realisation>, BuildFailure> {
        let hashes = self.output_hashes(drv)?;
        let mut out = BTreeMap::new();
        for (name, path) in &built.outputs {
            if let OutputsSpec::Names(names) = wanted {
                if !names.contains(name) {
                    continue;
                }
            }
            let Some(hash) = hashes.get(name) else { continue };
            let id = DrvOutput { drv_hash: hash.clone(), output_name: name.clone() };
            out.insert(name.clone(), Realisation::new(id, path.clone()));
        }
        Ok(out)
    }

    fn build_uncached(&self, drv_path: &StorePath) -> Result<Built, BuildFailure> {
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let printed = self.print(drv_path);
        // Rooted for the rest of the connection, so a collector running meanwhile keeps it.
        self.store.add_temp_root(drv_path).map_err(misc)?;
        if !self.store.is_valid(drv_path).map_err(misc)? {
            return Err(BuildFailure::misc(format!("cannot build missing derivation '{printed}'")));
        }
        let drv = read_derivation(self.store, drv_path).map_err(misc)?;
        self.build_given(drv_path, &drv)
    }

    /// Builds `drv` (read from `drv_path`, or sent by a client with `BuildDerivation`) if any
    /// output is missing, its input derivations first.
    pub fn build_given(&self, drv_path: &StorePath, drv: &Derivation) -> Result<Built, BuildFailure> {
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let printed = self.print(drv_path);
        if self.is_stopped() {
            return Err(BuildFailure::cancelled());
        }
        if let Err(e) = sandbox::builtin::check(drv) {
            // As the builtin itself fails in Nix (status 1 through a daemon).
            self.log_error(&e.0);
            return Err(BuildFailure::misc(format!("builder for '{printed}' failed with exit code 1")));
        }
        let drv_type = drv.derivation_type().map_err(|e| BuildFailure::misc(format!("derivation '{printed}': {e}")))?;
        let hashes = self.output_hashes(drv)?;
        if !drv_type.is_impure() {
            if let Some(valid) = self.valid_outputs(drv_path, drv, &hashes)? {
                return Ok(Built { status: BuildStatus::AlreadyValid, outputs: valid });
            }
            if drv_type.has_known_output_paths() {
                let outputs = self.output_paths(drv_path, drv)?;
                if let Some(status) = self.substitute_outputs(drv_path, drv, &outputs)? {
                    return Ok(Built { status, outputs });
                }
            } else if let Some(outputs) = self.substitute_realisations(drv, &hashes)? {
                return Ok(Built { status: BuildStatus::Substituted, outputs });
            }
        }
        self.build_inputs(&printed, drv, drv_type)?;
        for src in &drv.input_srcs {
            if !self.store.is_valid(src).map_err(misc)? {
                return Err(BuildFailure::misc(format!("path '{}' is not valid", self.print(src))));
            }
        }
        if self.needs_resolution(drv, drv_type) {
            return self.build_resolved(drv_path, drv, drv_type, &hashes);
        }
        let outputs = self.scratch_outputs(drv_path, drv)?;
        for path in outputs.values() {
            self.store.add_temp_root(path).map_err(misc)?;
        }
        let real_outputs: Vec<PathBuf> = outputs.values().map(|p| self.store.real_path(p)).collect();
        let _locks = PathLock::acquire_all(real_outputs.iter().map(|p| p.as_path())).map_err(misc)?;
        if drv_type.has_known_output_paths() && self.all_valid(&outputs)? {
            return Ok(Built { status: BuildStatus::AlreadyValid, outputs });
        }
        self.check_system(&printed, drv)?;
        remove_present(&real_outputs);
        let inputs = self.input_closure(drv)?;
        let _slot = self.job_slot()?;
        let finals = self.run_builder(drv_path, drv, &outputs, &inputs)?;
        if !drv_type.is_impure() {
            self.register_realisations(&hashes, &finals)?;
        }
        Ok(Built { status: BuildStatus::Built, outputs: finals })
    }

    /// Builds the input derivations (in order of name, as Nix's worker orders its goals; in
    /// parallel when the request's `max-jobs` allows).
    fn build_inputs(&self, printed: &str, drv: &Derivation, drv_type: DerivationType) -> Result<(), BuildFailure> {
        let mut input_drvs: Vec<(&StorePath, &InputOutputs)> = drv.input_drvs.iter().collect();
        input_drvs.sort_by(|a, b| a.0.name().cmp(b.0.name()).then_with(|| a.0.cmp(b.0)));
        if self.settings.impure_derivations && !drv_type.is_impure() && !drv_type.is_fixed() {
            for (input, _) in &input_drvs {
                let input_drv = read_derivation(self.store, input).map_err(|e| BuildFailure::misc(e.to_string()))?;
                if input_drv.derivation_type().is_ok_and(|t| t.is_impure()) {
                    return Err(BuildFailure::misc(format!(
                        "pure derivation '{printed}' depends on impure derivation '{}'",
                        self.print(input)
                    )));
                }
            }
        }
        let results = self.for_each_goal(&input_drvs, |(input, node)| {
            let result = self.build_input(input, node);
            if let Err(e) = &result {
                if !e.is_cancelled() && !e.ends_request() && e.status != BuildStatus::DependencyFailed {
                    self.log_error(&e.message);
                }
            }
            result
        });
        let mut failed = 0;
        let mut cancelled = false;
        for failure in results.into_iter().filter_map(Result::err) {
            if failure.ends_request() {
                return Err(failure);
            }
            if failure.is_cancelled() {
                cancelled = true;
            } else {
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(BuildFailure {
                status: BuildStatus::DependencyFailed,
                message: format!("{failed} dependencies of derivation '{printed}' failed to build"),
            });
        }
        if cancelled {
            return Err(BuildFailure::cancelled());
        }
        Ok(())
    }

    /// Builds an input derivation. Outputs of derivations that its outputs are (dynamic
    /// derivations) are refused, as Nix 2.26 refuses them.
    fn build_input(&self, input: &StorePath, node: &InputOutputs) -> Result<(), BuildFailure> {
        if !node.dynamic_outputs.is_empty() {
            return Err(one_shot());
        }
        if self.finished(input).is_none() && self.wanted_valid(input, &node.outputs)?.is_some() {
            return Ok(());
        }
        self.build_derivation(input).map(|_| ())
    }

    fn all_valid(&self, outputs: &BTreeMap<String, StorePath>) -> Result<bool, BuildFailure> {
        for path in outputs.values() {
            if !self.store.is_valid(path).map_err(|e| BuildFailure::misc(e.to_string()))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check_system(&self, printed: &str, drv: &Derivation) -> Result<(), BuildFailure> {
        let system = String::from_utf8_lossy(&drv.system);
        if system == self.settings.system || drv.is_builtin() && system == "builtin" {
            return Ok(());
        }
        Err(BuildFailure {
            status: BuildStatus::InputRejected,
            message: format!(
                "a '{system}' with features {{}} is required to build '{printed}', but I am a '{}' with features {{}}",
                self.settings.system
            ),
        })
    }

    /// The closure of the input sources and of the wanted outputs of the input derivations.
    fn input_closure(&self, drv: &Derivation) -> Result<BTreeSet<StorePath>, BuildFailure> {
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let mut roots: BTreeSet<StorePath> = drv.input_srcs.clone();
        for (input, needed) in &drv.input_drvs {
            for name in &needed.outputs {
                let path = self.input_output(input, name)?.ok_or_else(|| {
                    BuildFailure::misc(format!("derivation '{}' has no output '{name}'", self.print(input)))
                })?;
                roots.insert(path);
            }
        }
        let closure = self.store.closure(roots.iter(), ClosureOptions::default()).map_err(misc)?;
        for path in &closure {
            self.store.add_temp_root(path).map_err(misc)?;
        }
        Ok(closure)
    }

    /// The request for building `drv` with its outputs at `outputs`.
    fn request_for(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        inputs: &BTreeSet<StorePath>,
    ) -> Result<BuildRequest, BuildFailure> {
        Ok(BuildRequest {
            drv_base_name: drv_path.to_string(),
            derivation: drv.clone(),
            store_dir: self.store.store_dir().as_str().to_owned(),
            outputs: outputs.iter().map(|(k, p)| (k.clone(), self.store.real_path(p))).collect(),
            inputs: inputs.iter().map(|p| self.store.real_path(p)).collect(),
            build_dir_parent: self.settings.build_dir_parent.clone(),
            cores: self.settings.cores,
            // Impure derivations get `impureEnvVars` (and the network) as fixed outputs do.
            fixed_output: drv.derivation_type().is_ok_and(|t| !t.is_sandboxed()),
            impure_env: self.settings.impure_env.clone(),
            timeout: self.settings.timeout,
            max_silent_time: self.settings.max_silent_time,
            keep_failed: self.settings.keep_failed,
            extra_files: self.export_references_graph(drv, inputs)?,
            structured_extra: self.structured_export_graph(drv, inputs)?,
            rewrites: BTreeMap::new(),
            on_build_dir: None,
            cancel: self.stopped.clone(),
            live: Default::default(),
        })
    }

    /// `--check` of a derivation whose outputs are valid: built again at scratch paths (the
    /// outputs' hash parts rewritten for the builder), compared, and the scratch paths removed.
    fn check_derivation(&self, drv_path: &StorePath) -> Result<(), BuildFailure> {
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let printed = self.print(drv_path);
        let drv = read_derivation(self.store, drv_path).map_err(misc)?;
        if drv.is_builtin() {
            return Ok(());
        }
        let outputs = self.checked_outputs(drv_path, &drv)?;
        let mut scratch = BTreeMap::new();
        let mut rewrites = BTreeMap::new();
        for (name, path) in &outputs {
            let tmp = check::scratch_path(self.store, drv_path, &drv.name, name)?;
            rewrites.insert(path.hash_part().as_bytes().to_vec(), tmp.hash_part().as_bytes().to_vec());
            scratch.insert(name.clone(), tmp);
        }
        let real_scratch: Vec<PathBuf> = scratch.values().map(|p| self.store.real_path(p)).collect();
        let _locks = PathLock::acquire_all(real_scratch.iter().map(|p| p.as_path())).map_err(misc)?;
        remove_present(&real_scratch);
        let inputs = self.input_closure(&drv)?;
        let mut request = self.request_for(drv_path, &drv, &scratch, &inputs)?;
        request.rewrites = rewrites;
        let _slot = self.job_slot()?;
        let mut log = log::BuildLog::start(self.log.clone(), &printed, ActivityId::NONE);
        let outcome = self.backend.build(&request, &mut log);
        log.finish();
        let result = match outcome {
            Ok(BuildOutcome::Success) => check::compare(self.store, drv_path, &outputs, &scratch),
            Ok(BuildOutcome::Cancelled) => Err(BuildFailure::cancelled()),
            Ok(other) => Err(BuildFailure::permanent(format!("builder for '{printed}' {}", other.describe()))),
            Err(e) => Err(BuildFailure::misc(format!("while setting up the build of '{printed}': {e}"))),
        };
        remove_present(&real_scratch);
        result
    }

    fn run_builder(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        inputs: &BTreeSet<StorePath>,
    ) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let printed = self.print(drv_path);
        if drv.is_builtin() {
            return self.run_builtin(drv_path, drv, outputs, inputs);
        }
        let mut request = self.request_for(drv_path, drv, outputs, inputs)?;
        let system = &self.settings.system;
        let daemon = recursive::RecursiveDaemon::for_build(self.settings.recursive.as_ref(), system, &printed, drv, inputs, &request.live)?;
        request.on_build_dir = daemon.as_ref().map(|d| d.hook());
        let mut log = log::BuildLog::start(self.log.clone(), &printed, ActivityId::NONE);
        let outcome = self.backend.build(&request, &mut log);
        log.finish();
        // Paths added through recursive Nix are references the outputs may have.
        let inputs = &*recursive::with_added(inputs, daemon.map(|d| d.stop()).unwrap_or_default());
        let _ = log::write_build_log(&self.settings.log_dir, &drv_path.to_string(), log.contents(), true);
        let real: Vec<PathBuf> = outputs.values().map(|p| self.store.real_path(p)).collect();
        let remove_outputs = || remove_present(&real);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                remove_outputs();
                return Err(BuildFailure::misc(format!("while setting up the build of '{printed}': {e}")));
            }
        };
        if outcome == BuildOutcome::Cancelled {
            remove_outputs();
            return Err(BuildFailure::cancelled());
        }
        if outcome != BuildOutcome::Success {
            remove_outputs();
            let mut message = format!("builder for '{printed}' {}", outcome.describe());
            if !self.settings.verbose_client && log.tail().next().is_some() {
                let lines: Vec<&str> = log.tail().collect();
                message.push_str(&format!(";\nlast {} log lines:\n", lines.len()));
                for line in lines {
                    message.push_str(&format!("> {line}\n"));
                }
                let command = if self.settings.nix_command { "nix log" } else { "nix-store -l" };
                message.push_str(&format!("For full logs, run:\n  \x1b[1m{command} {printed}\x1b[0m"));
            }
            let status = match outcome {
                BuildOutcome::TimedOut(_) | BuildOutcome::Silent(_) => BuildStatus::TimedOut,
                _ => BuildStatus::PermanentFailure,
            };
            return Err(BuildFailure { status, message });
        }
        self.register_and_hook(drv_path, drv, outputs, inputs)
    }

    /// The closure `exportReferencesGraph` exports for `path_text`: the path must be in the
    /// input closure; derivations in the closure bring their valid outputs' closures.
    fn export_closure(&self, path_text: &str, inputs: &BTreeSet<StorePath>) -> Result<BTreeSet<StorePath>, BuildFailure> {
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let path = self.store.store_dir().parse(path_text).map_err(|_| {
            BuildFailure::permanent(format!("'exportReferencesGraph' contains a non-store path '{path_text}'"))
        })?;
        if !inputs.contains(&path) {
            return Err(BuildFailure::permanent(format!(
                "cannot export references of path '{path_text}' because it is not in the input closure of the derivation"
            )));
        }
        let mut paths = self.store.closure([&path], ClosureOptions::default()).map_err(misc)?;
        let drvs: Vec<StorePath> = paths.iter().filter(|p| p.to_string().ends_with(".drv")).cloned().collect();
        for d in drvs {
            for out in self.store.query_derivation_outputs(&d).map_err(misc)?.values() {
                if self.store.is_valid(out).map_err(misc)? {
                    paths.extend(self.store.closure([out], ClosureOptions::default()).map_err(misc)?);
                }
            }
        }
        Ok(paths)
    }

    /// The files of `exportReferencesGraph` without structured attributes: for each
    /// `name path` pair, `name` holds the exported closure in Nix's registration format.
    fn export_references_graph(&self, drv: &Derivation, inputs: &BTreeSet<StorePath>) -> Result<Vec<(String, Vec<u8>)>, BuildFailure> {
        if drv.env.contains_key(&b"__json"[..]) {
            return Ok(Vec::new());
        }
        let Some(spec) = drv.env.get(&b"exportReferencesGraph"[..]) else { return Ok(Vec::new()) };
        let spec = String::from_utf8_lossy(spec);
        let words: Vec<&str> = spec.split_whitespace().collect();
        if !words.len().is_multiple_of(2) {
            return Err(BuildFailure::permanent(format!("odd number of tokens in 'exportReferencesGraph': '{spec}'")));
        }
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        let mut files = Vec::new();
        for pair in words.chunks(2) {
            let (name, path_text) = (pair[0], pair[1]);
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(BuildFailure::permanent(format!("invalid file name '{name}' in 'exportReferencesGraph'")));
            }
            let mut text = String::new();
            for p in &self.export_closure(path_text, inputs)? {
                let refs = self.store.query_references(p).map_err(misc)?;
                text.push_str(&format!("{}\n\n{}\n", self.print(p), refs.len()));
                for r in refs {
                    text.push_str(&format!("{}\n", self.print(&r)));
                }
            }
            files.push((name.to_owned(), text.into_bytes()));
        }
        Ok(files)
    }

    /// With structured attributes, `exportReferencesGraph` is an object whose keys become
    /// attributes holding the exported closures as path-info JSON (Nix's `pathInfoToJSON`).
    fn structured_export_graph(
        &self,
        drv: &Derivation,
        inputs: &BTreeSet<StorePath>,
    ) -> Result<BTreeMap<String, serde_json::Value>, BuildFailure> {
        let mut extra = BTreeMap::new();
        let Some(json) = drv.env.get(&b"__json"[..]) else { return Ok(extra) };
        let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        let Some(graph) = value.get("exportReferencesGraph").and_then(|g| g.as_object()) else { return Ok(extra) };
        let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
        for (key, paths) in graph {
            let mut closure = BTreeSet::new();
            for p in paths.as_array().into_iter().flatten().filter_map(|p| p.as_str()) {
                closure.extend(self.export_closure(p, inputs)?);
            }
            let mut list = Vec::new();
            for p in &closure {
                let info = self.store.query_path_info(p).map_err(misc)?.ok_or_else(|| {
                    BuildFailure::misc(format!("path '{}' is not valid", self.print(p)))
                })?;
                let closure_size: u64 = self
                    .store
                    .closure([p], ClosureOptions::default())
                    .map_err(misc)?
                    .iter()
                    .map(|q| self.store.query_path_info(q).ok().flatten().map_or(0, |i| i.nar_size))
                    .sum();
                let mut obj = serde_json::Map::new();
                if let Some(ca) = &info.ca {
                    obj.insert("ca".into(), ca.to_string().into());
                }
                obj.insert("closureSize".into(), closure_size.into());
                obj.insert("narHash".into(), info.nar_hash.encode(nix_formats::hash::Encoding::Nix32, true).into());
                obj.insert("narSize".into(), info.nar_size.into());
                obj.insert("path".into(), self.print(p).into());
                let refs: Vec<serde_json::Value> = info.references.iter().map(|r| self.print(r).into()).collect();
                obj.insert("references".into(), refs.into());
                obj.insert("valid".into(), true.into());
                list.push(serde_json::Value::Object(obj));
            }
            extra.insert(key.clone(), serde_json::Value::Array(list));
        }
        Ok(extra)
    }

    /// Runs `post-build-hook` with `DRV_PATH` and `OUT_PATHS`, its output going to the
    /// client as post-build log lines (Nix's `runPostBuildHook`).
    fn run_post_build_hook(&self, drv_path: &StorePath, outputs: &BTreeMap<String, StorePath>) -> Result<(), BuildFailure> {
        let Some(hook) = self.settings.post_build_hook.as_deref().filter(|h| !h.is_empty()) else { return Ok(()) };
        let printed = self.print(drv_path);
        let out_paths: Vec<String> = outputs.values().collect::<BTreeSet<_>>().into_iter().map(|p| self.print(p)).collect();
        let id = ActivityId::next();
        self.log.msg(LogMessage::StartActivity {
            id,
            level: worker_protocol::logger::Verbosity::Talkative,
            kind: worker_protocol::logger::ActivityType::PostBuildHook,
            text: format!("running post-build-hook '{hook}'").into_bytes(),
            fields: vec![worker_protocol::logger::Field::String(printed.clone().into_bytes())],
            parent: ActivityId::NONE,
        });
        let result = (|| -> Result<std::process::ExitStatus, std::io::Error> {
            let (reader, writer) = std::io::pipe()?;
            let writer2 = writer.try_clone()?;
            let mut command = std::process::Command::new(hook);
            command
                .env("DRV_PATH", &printed)
                .env("OUT_PATHS", out_paths.join(" "))
                .env("NIX_CONFIG", &self.settings.nix_config)
                .stdin(std::process::Stdio::null())
                .stdout(writer)
                .stderr(writer2);
            let mut child = command.spawn()?;
            drop(command);
            for line in sandbox::none::line_reader(reader) {
                self.log.msg(LogMessage::Result {
                    id,
                    kind: worker_protocol::logger::ResultType::PostBuildLogLine,
                    fields: vec![worker_protocol::logger::Field::String(line)],
                });
            }
            child.wait()
        })();
        self.log.msg(LogMessage::StopActivity { id });
        match result {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(BuildFailure::misc(format!(
                "program '{hook}' {}",
                match status.code() {
                    Some(code) => format!("failed with exit code {code}"),
                    None => "was killed by a signal".to_owned(),
                }
            ))),
            Err(e) => Err(BuildFailure::misc(format!("running post-build-hook '{hook}': {e}"))),
        }
    }

    /// Checks and registers the built outputs (removing them if that fails), then runs the
    /// post-build hook. Floating outputs move to their content-addressed paths: the final
    /// paths are returned.
    fn register_and_hook(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        inputs: &BTreeSet<StorePath>,
    ) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let floating = drv.outputs.values().any(|o| ca::floating_method(o).is_some());
        let registered = if floating {
            ca::FloatingBuild {
                store: self.store,
                drv_path,
                drv,
                scratch: outputs,
                inputs,
                tmp_dir: &self.settings.build_dir_parent,
                secret_keys: &self.settings.secret_keys,
            }
            .register()
        } else {
            outputs::register(self.store, drv_path, drv, outputs, inputs, &self.settings.secret_keys).map(|()| outputs.clone())
        };
        let finals = match registered {
            Ok(finals) => finals,
            Err(e) => {
                remove_present(&outputs.values().map(|p| self.store.real_path(p)).collect::<Vec<_>>());
                return Err(e);
            }
        };
        if !self.settings.auto_optimise {
            outputs::unshare(self.store, &finals);
        }
        self.run_post_build_hook(drv_path, &finals)?;
        Ok(finals)
    }

    /// Runs a builtin builder in this process, then checks and registers its outputs.
    fn run_builtin(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        inputs: &BTreeSet<StorePath>,
    ) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let printed = self.print(drv_path);
        let real: BTreeMap<String, PathBuf> = outputs.iter().map(|(k, p)| (k.clone(), self.store.real_path(p))).collect();
        let log = log::BuildLog::start(self.log.clone(), &printed, ActivityId::NONE);
        let ran = sandbox::builtin::run(drv, &real);
        log.finish();
        if let Err(e) = ran {
            remove_present(real.values());
            self.log_error(&e.0);
            return Err(BuildFailure::permanent(format!("builder for '{printed}' failed with exit code 1")));
        }
        self.register_and_hook(drv_path, drv, outputs, inputs)
    }
}
