//! A real Nix 2.8 `nix-daemon` on an isolated store, for the `casnix store` tests: the daemon,
//! the real Nix clients talking to it, and casnix talking to it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Fails the test if `program` is not installed.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs Nix)");
}

/// Store, state, log and config directories under `/tmp`, and a `nix-daemon` serving them
/// (killed on drop).
pub struct NixDaemon {
    pub dir: tempfile::TempDir,
    daemon: Child,
}

impl NixDaemon {
    /// Creates the environment and starts the daemon.
    pub fn start() -> Self {
        require("nix-daemon");
        let dir = tempfile::Builder::new().prefix("casnix-cli-").tempdir_in("/tmp").expect("tempdir");
        for sub in ["store", "state", "log", "conf", "home"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        fs::write(
            dir.path().join("conf/nix.conf"),
            "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n",
        )
        .expect("nix.conf");
        let daemon = env_command(dir.path(), "nix-daemon", "local").spawn().expect("start nix-daemon");
        let mut this = Self { dir, daemon };
        // Wait until a whole client session works: the first connection also creates the store's
        // database, and connections racing with that can be dropped.
        for _ in 0..400 {
            if this.socket().exists() && this.nix("nix").args(["store", "ping"]).output().is_ok_and(|o| o.status.success()) {
                return this;
            }
            if let Ok(Some(status)) = this.daemon.try_wait() {
                panic!("nix-daemon exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nix-daemon does not serve {}", this.socket().display());
    }

    /// A path in the environment.
    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.path("socket")
    }

    /// The store directory.
    pub fn store(&self) -> String {
        self.path("store").to_str().expect("UTF-8 path").to_owned()
    }

    /// A Nix client (`nix-store`, `nix`, ...) of the daemon.
    pub fn nix(&self, program: &str) -> Command {
        require(program);
        env_command(self.dir.path(), program, "daemon")
    }

    /// casnix with this environment (`NIX_REMOTE=daemon`, the socket in
    /// `NIX_DAEMON_SOCKET_PATH`, the store directory in `NIX_STORE_DIR`).
    pub fn casnix(&self) -> Command {
        let mut cmd = env_command(self.dir.path(), env!("CARGO_BIN_EXE_casnix"), "daemon");
        cmd.arg("store");
        cmd
    }
}

impl Drop for NixDaemon {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn env_command(dir: &Path, program: &str, remote: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("NIX_STORE_DIR", dir.join("store"))
        .env("NIX_STATE_DIR", dir.join("state"))
        .env("NIX_LOG_DIR", dir.join("log"))
        .env("NIX_CONF_DIR", dir.join("conf"))
        .env("NIX_DAEMON_SOCKET_PATH", dir.join("socket"))
        .env("NIX_REMOTE", remote)
        .env("HOME", dir.join("home"))
        .env("XDG_CACHE_HOME", dir.join("home/cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a command with `args`, requires success, and returns its stdout as text.
pub fn ok(cmd: &mut Command, args: &[&str]) -> String {
    let out = output(cmd, args);
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs a command with `args` and returns everything.
pub fn output(cmd: &mut Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Asserts that a command failed with a one-line error (`error: ...` containing `needle`) as
/// the last line of stderr, after at most the daemon's log lines, and no panic.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr:?}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains(needle), "{stderr:?} lacks {needle:?}");
}
