//! The two daemons: Nix's `nix-daemon` (the reference) and the daemon under test, started the
//! same way (foreground, no arguments, configured by `NIX_*` variables) on the same directories.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};

use crate::client::{ClientKind, CHROOT_SCRIPT};
use crate::env::Env;
use crate::must;

/// Which daemon serves the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonKind {
    /// Nix's `nix-daemon` ([`DaemonKind::launch`] says which).
    Reference,
    /// The daemon under test ([`under_test_binary`]).
    UnderTest,
}

/// How a daemon is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A binary on the host.
    Host(PathBuf),
    /// Nix 2.26's `nix-daemon` in the trixie root (private mount namespace, chroot).
    Trixie,
}

impl std::fmt::Display for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Launch::Host(path) => write!(f, "{}", path.display()),
            Launch::Trixie => write!(f, "nix-daemon 2.26 in {}", crate::env::trixie_root().display()),
        }
    }
}

impl DaemonKind {
    /// A short name for reports and log files.
    pub fn name(self) -> &'static str {
        match self {
            DaemonKind::Reference => "reference",
            DaemonKind::UnderTest => "under-test",
        }
    }

    /// How this daemon is started for `client`.
    ///
    /// The reference is chosen by `CASNIX_REFERENCE`: unset or `nix-2.8`, Nix 2.8's `nix-daemon`
    /// from `PATH`; `nix-2.26`, Nix 2.26's in the trixie root; `client`, the client's own version
    /// (what users of each client see, at the newest protocol each speaks); anything else, a
    /// binary's path. The daemon under test is `CASNIX_DAEMON` (a path, or `nix-2.26`), else
    /// [`under_test_binary`].
    pub fn launch(self, client: ClientKind) -> Launch {
        match self {
            DaemonKind::Reference => match std::env::var("CASNIX_REFERENCE").ok().as_deref() {
                None | Some("" | "nix-2.8") => Launch::Host(host_nix_daemon()),
                Some("nix-2.26") => Launch::Trixie,
                Some("client") if client == ClientKind::Nix226 => Launch::Trixie,
                Some("client") => Launch::Host(host_nix_daemon()),
                Some(path) => Launch::Host(PathBuf::from(path)),
            },
            DaemonKind::UnderTest => match std::env::var("CASNIX_DAEMON").ok().as_deref() {
                Some("nix-2.26") => Launch::Trixie,
                _ => Launch::Host(under_test_binary()),
            },
        }
    }
}

/// How long a daemon may take to answer its first handshake.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The worker protocol's client and server magic numbers.
const WORKER_MAGIC_1: u64 = 0x6e69_7863;
const WORKER_MAGIC_2: u64 = 0x6478_696f;

/// Nix 2.8's daemon: `nix-daemon` on `PATH`.
pub fn host_nix_daemon() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("nix-daemon")).find(|p| p.is_file()));
    must(found.ok_or("not on PATH; run scripts/test-all.sh, which installs nix-bin"), "nix-daemon")
}

/// The daemon under test: `CASNIX_DAEMON` if set; else `<target>/release/casnix-daemon` of this
/// workspace (`CARGO_TARGET_DIR` or `target/`), built with `cargo build --release -p daemon --bin
/// casnix-daemon` when missing.
pub fn under_test_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("CASNIX_DAEMON") {
                let path = PathBuf::from(path);
                assert!(path.is_file(), "CASNIX_DAEMON={} is not a file", path.display());
                return path;
            }
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
            let binary = target.join("release/casnix-daemon");
            if !binary.is_file() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = must(
                    Command::new(cargo)
                        .current_dir(&workspace)
                        .args(["build", "--release", "-p", "daemon", "--bin", "casnix-daemon"])
                        .status(),
                    "run cargo build",
                );
                assert!(
                    status.success() && binary.is_file(),
                    "cannot build casnix-daemon ({status}); set CASNIX_DAEMON to the daemon to test \
                     (CASNIX_DAEMON=/usr/bin/nix-daemon compares Nix with itself)"
                );
            }
            binary
        })
        .clone()
}

/// A running daemon (its process group is ended on drop).
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    kind: DaemonKind,
    log: PathBuf,
}

impl Daemon {
    /// Starts `launch` as `kind` on `env` and waits until it answers a handshake.
    pub fn start(env: &Env, kind: DaemonKind, launch: &Launch) -> Self {
        let log = env.path(&format!("logs/{}.log", kind.name()));
        let log_file = must(fs::File::create(&log), "daemon log file");
        let log_err = must(log_file.try_clone(), "daemon log file");
        let p = |sub: &str| env.path(sub).to_string_lossy().into_owned();
        let mut vars = vec![
            ("PATH".to_owned(), "/usr/bin:/bin:/usr/sbin:/sbin".to_owned()),
            ("HOME".to_owned(), p("logs")),
            ("NIX_STORE_DIR".to_owned(), p("store")),
            ("NIX_STATE_DIR".to_owned(), p("state")),
            ("NIX_LOG_DIR".to_owned(), p("log")),
            ("NIX_CONF_DIR".to_owned(), p("conf")),
            ("NIX_DAEMON_SOCKET_PATH".to_owned(), env.socket().to_string_lossy().into_owned()),
            ("NIX_REMOTE".to_owned(), "local".to_owned()),
        ];
        if let Ok(filter) = std::env::var("RUST_LOG") {
            vars.push(("RUST_LOG".to_owned(), filter));
        }
        let mut cmd = match launch {
            Launch::Host(binary) => {
                let mut cmd = Command::new(binary);
                cmd.env_clear().envs(vars);
                cmd
            }
            Launch::Trixie => {
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "sh", "-c", CHROOT_SCRIPT, "sh"]).arg(crate::env::trixie_root());
                cmd.args(["env", "-i"]).args(vars.iter().map(|(k, v)| format!("{k}={v}"))).arg("nix-daemon");
                cmd
            }
        };
        cmd.current_dir(env.root()).stdin(Stdio::null()).stdout(log_file).stderr(log_err).process_group(0);
        let child = must(cmd.spawn(), "start daemon");
        let mut daemon = Self { child, kind, log };
        daemon.wait_ready(&env.socket(), launch);
        daemon
    }

    /// Which daemon this is.
    pub fn kind(&self) -> DaemonKind {
        self.kind
    }

    /// The last `lines` lines the daemon wrote.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    fn wait_ready(&mut self, socket: &Path, launch: &Launch) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{launch} exited at start ({status}):\n{}", self.log_tail(30));
            }
            if handshake(socket) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{launch} does not answer on {}:\n{}", socket.display(), self.log_tail(30));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends the worker protocol's first magic number and reads the daemon's. Nix's daemon opens the
/// store (creating its database) before it answers, so an answer means the store is ready.
fn handshake(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(&WORKER_MAGIC_1.to_le_bytes()).is_err() {
        return false;
    }
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).is_ok() && u64::from_le_bytes(reply) == WORKER_MAGIC_2
}

/// Ends a child's process group: SIGTERM, then SIGKILL after a grace period; reaps the child
/// and waits (boundedly) until no member of the group is left, so nothing writes into a store
/// that is about to be wiped.
pub(crate) fn kill_group(child: &mut Child) {
    let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else { return };
    let _ = kill_process_group(pid, Signal::TERM);
    let start = Instant::now();
    let mut killed = false;
    loop {
        let leader_gone = !matches!(child.try_wait(), Ok(None));
        if leader_gone && test_kill_process_group(pid).is_err() {
            return;
        }
        let waited = start.elapsed();
        if waited > Duration::from_secs(5) && !killed {
            let _ = kill_process_group(pid, Signal::KILL);
            killed = true;
        }
        if waited > Duration::from_secs(15) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
