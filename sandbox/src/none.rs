//! The `none` backend: runs the builder unsandboxed, as Nix does with `sandbox = false`. The
//! builder sees the whole file system and writes its outputs straight to their store paths.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::env::{build_env, BuildEnv, EnvParams};
use crate::request::{Backend, BuildOutcome, BuildRequest, LogSink, SandboxError};

/// The longest log line passed on whole; longer ones are split.
const MAX_LINE: usize = 64 << 10;

/// Runs builders directly on the host.
#[derive(Debug, Default, Clone)]
pub struct NoSandbox {
    users: Option<std::sync::Arc<crate::userpool::UserPool>>,
}

/// Creates a fresh `nix-build-<drv name>-<n>` directory (mode 0700) under `parent`.
pub fn create_build_dir(parent: &Path, drv_base_name: &str) -> Result<PathBuf, SandboxError> {
    let name = drv_base_name.split_once('-').map_or(drv_base_name, |(_, rest)| rest);
    for n in 0u32.. {
        let dir = parent.join(format!("nix-build-{name}-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100_000 => continue,
            Err(e) => return Err(SandboxError::io(format!("creating build directory '{}'", dir.display()))(e)),
        }
    }
    Err(SandboxError::Unsupported("no free build directory name".into()))
}

/// Removes a build directory, making read-only parts writable first.
pub fn remove_build_dir(dir: &Path) {
    fn make_writable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.is_dir() {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
                if let Ok(entries) = std::fs::read_dir(path) {
                    for entry in entries.flatten() {
                        make_writable(&entry.path());
                    }
                }
            }
        }
    }
    if std::fs::remove_dir_all(dir).is_err() {
        make_writable(dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Writes the environment's files into the build directory.
pub fn write_env_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), SandboxError> {
    for (name, contents) in files {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(SandboxError::io(format!("creating '{}'", path.display())))?;
        file.write_all(contents).map_err(SandboxError::io(format!("writing '{}'", path.display())))?;
    }
    Ok(())
}

/// The builder's environment for `request` as Nix sets it, seen from inside: the store
/// directory `store_dir`, the build directory `build_dir` and the outputs at `outputs`. Its
/// files (`passAsFile`, structured attributes) and the request's extra files are written into
/// `host_dir`, the build directory on the host.
pub fn write_builder_env(
    request: &BuildRequest,
    store_dir: &str,
    build_dir: &str,
    outputs: &std::collections::BTreeMap<String, String>,
    host_dir: &Path,
) -> Result<BuildEnv, SandboxError> {
    let params = EnvParams {
        store_dir,
        build_dir,
        cores: request.cores,
        fixed_output: request.fixed_output,
        outputs,
        impure_env: &request.impure_env,
        rewrites: &request.rewrites,
        structured_extra: &request.structured_extra,
    };
    let env = build_env(&request.derivation, &params).map_err(|e| SandboxError::Unsupported(e.to_string()))?;
    write_env_files(host_dir, &env.files)?;
    write_env_files(host_dir, &request.extra_files)?;
    Ok(env)
}

/// How often a running build looks at its [`crate::Cancellation`].
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// A running builder as [`supervise_with`] sees it: a process group to kill and an end to
/// wait for.
pub trait Supervised {
    /// The process id of the group's leader.
    fn id(&self) -> u32;
    /// Waits until it ends.
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus>;
}

impl Supervised for Child {
    fn id(&self) -> u32 {
        Child::id(self)
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        Child::wait(self)
    }
}

/// Waits for `child`, passing its output lines from `lines` to `log`, and enforcing the
/// request's timeouts and cancellation by killing its process group.
pub fn supervise(
    mut child: Child,
    lines: mpsc::Receiver<Vec<u8>>,
    log: &mut dyn LogSink,
    request: &BuildRequest,
) -> Result<BuildOutcome, SandboxError> {
    supervise_with(&mut child, lines, log, request, &|_| {})
}

/// [`supervise`], calling `kill` first when a timeout or the cancellation strikes (to kill
/// what the process group does not hold, such as a container), before the process group gets
/// SIGKILL. Once it was killed, how it ends (even with an error) does not matter.
pub fn supervise_with<C: Supervised>(
    child: &mut C,
    lines: mpsc::Receiver<Vec<u8>>,
    log: &mut dyn LogSink,
    request: &BuildRequest,
    kill: &dyn Fn(&C),
) -> Result<BuildOutcome, SandboxError> {
    let (timeout, max_silent_time) = (request.timeout, request.max_silent_time);
    let started = Instant::now();
    let mut last_output = Instant::now();
    let mut killed_for = None;
    loop {
        if request.cancel.is_cancelled() {
            killed_for = Some(BuildOutcome::Cancelled);
            break;
        }
        let now = Instant::now();
        let mut wait = CANCEL_POLL;
        if let Some(t) = timeout {
            if now.duration_since(started) >= t {
                killed_for = Some(BuildOutcome::TimedOut(t));
                break;
            }
            wait = wait.min(t - now.duration_since(started));
        }
        if let Some(t) = max_silent_time {
            if now.duration_since(last_output) >= t {
                killed_for = Some(BuildOutcome::Silent(t));
                break;
            }
            wait = wait.min(t - now.duration_since(last_output));
        }
        match lines.recv_timeout(wait) {
            Ok(line) => {
                last_output = Instant::now();
                log.line(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every writer has closed the pipe: the builder (and its children) are done.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if killed_for.is_some() {
        kill(child);
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
    let status = child.wait();
    if let Some(outcome) = killed_for {
        return Ok(outcome);
    }
    let status = status.map_err(SandboxError::io("waiting for the builder"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(0), _) => BuildOutcome::Success,
        (Some(code), _) => BuildOutcome::Failed(code),
        (None, Some(sig)) => BuildOutcome::Signalled(sig),
        (None, None) => BuildOutcome::Failed(-1),
    })
}

/// Starts a thread that splits what arrives on `output` into lines.
pub fn line_reader(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel(256);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(output);
        loop {
            let mut line = Vec::new();
            match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

impl Backend for NoSandbox {
    fn name(&self) -> &'static str {
        "none"
    }

    fn build(&self, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError> {
        let dir = create_build_dir(&request.build_dir_parent, &request.drv_base_name)?;
        let result = self.run_in(&dir, request, log);
        let failed = !matches!(result, Ok(BuildOutcome::Success));
        if failed && request.keep_failed {
            log.line(format!("note: keeping build directory '{}'", dir.display()).as_bytes());
        } else {
            remove_build_dir(&dir);
        }
        result
    }
}

/// Gives `path` and everything under it (not following symlinks) to `uid`:`gid`.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), SandboxError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(SandboxError::io(format!("changing the owner of '{}'", path.display())))?;
    let meta = std::fs::symlink_metadata(path).map_err(SandboxError::io(format!("reading '{}'", path.display())))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(SandboxError::io(format!("reading '{}'", path.display())))? {
            let entry = entry.map_err(SandboxError::io(format!("reading '{}'", path.display())))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Kills every process running as `uid` (Nix's `killUser`), looking through `/proc` until
/// none is left.
fn kill_user(uid: u32) {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..100 {
        let mut found = false;
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if entry.metadata().map(|m| m.uid()).ok() != Some(uid) {
                continue;
            }
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                if rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok() {
                    found = true;
                }
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(uid, "processes of the build user survive SIGKILL");
}

impl NoSandbox {
    /// Runs each builder as a free member of `pool` (Nix's build users; the daemon must be
    /// root): the build directory is that user's, and its processes are killed afterwards.
    pub fn with_build_users(mut self, pool: std::sync::Arc<crate::userpool::UserPool>) -> Self {
        self.users = Some(pool);
        self
    }

    /// The unsandboxed fallback of a sandboxing backend: its build users, if it has them.
    pub(crate) fn fallback(users: Option<&std::sync::Arc<crate::userpool::UserPool>>) -> Self {
        Self { users: users.cloned() }
    }

    fn run_in(&self, dir: &Path, request: &BuildRequest, log: &mut dyn LogSink) -> Result<BuildOutcome, SandboxError> {
        let build_user = self.users.as_ref().map(|pool| pool.acquire()).transpose()?;
        let owner = build_user.as_ref().map(|user| (user.ids.uid, user.ids.gid));
        if let Some((uid, _)) = owner {
            kill_user(uid);
        }
        let result = self.run_as(dir, request, log, owner);
        if let Some((uid, _)) = owner {
            kill_user(uid);
        }
        result
    }

    fn run_as(
        &self,
        dir: &Path,
        request: &BuildRequest,
        log: &mut dyn LogSink,
        owner: Option<(u32, u32)>,
    ) -> Result<BuildOutcome, SandboxError> {
        let dir_text = dir.to_string_lossy().into_owned();
        let outputs = request.outputs.iter().map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned())).collect();
        let mut env = write_builder_env(request, &request.store_dir, &dir_text, &outputs, dir)?;
        let info = crate::request::BuildDirInfo { host: dir, inside: &dir_text, owner };
        request.run_build_dir_hook(&info, &mut env.vars)?;
        if let Some((uid, gid)) = owner {
            chown_tree(dir, uid, gid)?;
        }
        let (reader, writer) = std::io::pipe().map_err(SandboxError::io("creating the log pipe"))?;
        let writer2 = writer.try_clone().map_err(SandboxError::io("creating the log pipe"))?;
        let drv = &request.derivation;
        let mut command = Command::new(OsStr::from_bytes(&drv.builder));
        command
            .args(env.args.iter().map(|a| OsStr::from_bytes(a)))
            .env_clear()
            .envs(env.vars.iter().map(|(k, v)| {
                (OsStr::from_bytes(k), OsStr::from_bytes(v))
            }))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .process_group(0);
        if let Some((uid, gid)) = owner {
            // std clears the supplementary groups when it changes the uid as root.
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().map_err(|e| {
            SandboxError::io(format!(
                "executing '{}'",
                String::from_utf8_lossy(&drv.builder)
            ))(e)
        })?;
        // The command holds the pipe's write ends; drop them so the pipe closes with the builder.
        drop(command);
        let lines = line_reader(reader);
        supervise(child, lines, log, request)
    }
}
