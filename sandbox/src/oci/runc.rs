//! Running a bundle with `runc`: finding the binary, one container per build under a state
//! directory casnix owns (`runc --root`), the builder's stdio on the log pipe, and making sure
//! no container outlives its build (`runc kill`, `runc delete --force`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::request::SandboxError;

/// Where to look for `runc` when `PATH` does not have it (Debian installs it in `/usr/sbin`,
/// which a non-root `PATH` often lacks).
const FALLBACK_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/// The prefix of every container id casnix creates: `casnix-<daemon pid>-<n>`.
const ID_PREFIX: &str = "casnix-";

/// A `runc` binary and the state directory its containers are kept in.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    state_dir: PathBuf,
    rootless: bool,
}

impl Runc {
    /// Finds `runc` (in `PATH`, then the usual system directories) and prepares `state_dir`
    /// (mode 0700) for its containers' state. `rootless` runs it with `--rootless true` (a
    /// daemon that is not root).
    pub fn locate(state_dir: &Path, rootless: bool) -> Result<Self, SandboxError> {
        let binary = find_in_path("runc").ok_or_else(|| not_installed("not in PATH nor in /usr/sbin or /usr/bin"))?;
        Self::with_binary(binary, state_dir, rootless)
    }

    /// Like [`Runc::locate`] with the binary given.
    pub fn with_binary(binary: PathBuf, state_dir: &Path, rootless: bool) -> Result<Self, SandboxError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !is_executable(&binary) {
            return Err(not_installed(&format!("no executable '{}'", binary.display())));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(SandboxError::io(format!("creating runc's state directory '{}'", state_dir.display())))?;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(SandboxError::io(format!("restricting '{}'", state_dir.display())))?;
        Ok(Self { binary, state_dir: state_dir.to_path_buf(), rootless })
    }

    /// The `runc` binary used.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The state directory (`runc --root`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A container id no other build of any casnix process uses.
    pub fn fresh_id() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!("{ID_PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state_dir);
        if self.rootless {
            command.arg("--rootless").arg("true");
        }
        command.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        command
    }

    /// Starts `runc run` of `bundle` as container `id` in the foreground: the builder's stdout
    /// and stderr are `output` (passed through, no terminal), its stdin is `/dev/null`; runc's
    /// own messages go to `runc_log`. `runc` leads a process group of its own.
    pub fn spawn_run(
        &self,
        id: &str,
        bundle: &Path,
        runc_log: &Path,
        output: std::io::PipeWriter,
    ) -> Result<Child, SandboxError> {
        let stderr = output.try_clone().map_err(SandboxError::io("duplicating the log pipe"))?;
        let mut command = self.command();
        command
            .arg("--log")
            .arg(runc_log)
            .arg("--log-format")
            .arg("text")
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .process_group(0);
        let child = command.spawn().map_err(SandboxError::io(format!("executing '{}'", self.binary.display())))?;
        Ok(child)
    }

    /// Sends SIGKILL to every process of container `id` (its PID namespace dies with its init).
    pub fn kill(&self, id: &str) {
        let status = self
            .command()
            .args(["kill", id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = status {
            tracing::warn!(container = id, error = %e, "runc kill failed");
        }
    }

    /// Removes container `id` whatever its state (`runc delete --force`), with its cgroup.
    /// Nothing happens when it does not exist.
    pub fn delete(&self, id: &str) {
        if !self.state_dir.join(id).exists() {
            return;
        }
        match self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => tracing::warn!(
                container = id,
                error = %String::from_utf8_lossy(&out.stderr).trim(),
                "runc delete failed"
            ),
            Err(e) => tracing::warn!(container = id, error = %e, "runc delete failed"),
        }
    }

    /// The containers in the state directory (their ids).
    pub fn containers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.state_dir) else {
            return Vec::new();
        };
        entries.flatten().filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect()
    }

    /// Removes the containers left by casnix processes that no longer run (a daemon that
    /// crashed mid-build).
    pub fn remove_stale(&self) {
        for id in self.containers() {
            let Some(pid) = id.strip_prefix(ID_PREFIX).and_then(|rest| rest.split('-').next()) else {
                continue;
            };
            let alive = pid
                .parse::<u32>()
                .is_ok_and(|pid| pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                tracing::info!(container = %id, "removing a container left by a casnix process that is gone");
                self.delete(&id);
            }
        }
    }
}

/// What runc said when it failed, from its log file: the `level=error` messages.
pub fn runc_errors(runc_log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(runc_log).ok()?;
    let errors: Vec<String> = text
        .lines()
        .filter(|l| l.contains("level=error"))
        .map(|l| l.split_once("msg=").map_or(l, |(_, m)| m))
        .map(|m| m.trim().trim_matches('"').replace("\\\"", "\"").replace("\\\\", "\\"))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn not_installed(detail: &str) -> SandboxError {
    SandboxError::Setup(format!(
        "the 'oci' sandbox backend needs 'runc', which is not installed ({detail}); install it \
         (Debian: 'apt-get install runc') or choose another 'sandbox-backend'"
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` in `PATH` or the usual system directories.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(""));
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_differ_and_carry_the_pid() {
        let a = Runc::fresh_id();
        let b = Runc::fresh_id();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("casnix-{}-", std::process::id())));
    }

    #[test]
    fn errors_are_read_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        std::fs::write(
            &log,
            "time=\"x\" level=warning msg=\"meh\"\ntime=\"x\" level=error msg=\"runc run failed: exec: \\\"/b\\\": no such file\"\n",
        )
        .unwrap();
        assert_eq!(runc_errors(&log).as_deref(), Some("runc run failed: exec: \"/b\": no such file"));
        std::fs::write(&log, "").unwrap();
        assert_eq!(runc_errors(&log), None);
    }

    #[test]
    fn a_missing_binary_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_in_path("casnix-no-such-binary-here").is_none());
        let err = Runc::with_binary(dir.path().join("runc"), &dir.path().join("state"), false).unwrap_err();
        assert!(err.to_string().contains("apt-get install runc"), "{err}");
        assert!(!dir.path().join("state").exists());
    }
}
