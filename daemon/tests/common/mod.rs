//! Shared helpers for casnix-daemon's integration tests: an isolated Nix root under `/tmp`
//! (store, state, log and configuration directories, a socket), `casnix-daemon` started on it
//! (killed on drop), the real Nix 2.8 clients pointed at it, and raw protocol clients.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix_formats::content_address::ContentAddress;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::nar::Writer;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};
use worker_protocol::connection::{ClientConfig, ClientConnection, UnixClientConnection};

/// The daemon binary under test.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_casnix-daemon");

/// The user the untrusted-client tests run Nix as.
pub const UNTRUSTED_USER: &str = "casnix-test";

/// The `nix.conf` every test root starts with.
pub const BASE_CONF: &str =
    "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n";

/// Fails the test if `program` is not installed.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs what the tests need)");
}

/// An isolated Nix root: `store`, `state`, `log`, `conf` (with `nix.conf`), `home`, and the
/// socket path `socket`, in a temporary directory that everyone may enter (so an unprivileged
/// client can reach the socket and the store).
pub struct TestRoot {
    /// The temporary directory.
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    /// A new root whose `nix.conf` is [`BASE_CONF`] followed by `extra_conf`.
    pub fn new(extra_conf: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("casnix-daemon-").tempdir_in("/tmp").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["store", "state", "log", "conf", "home"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let root = Self { dir };
        root.write_conf(extra_conf);
        root
    }

    /// A path inside the root.
    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.path("socket")
    }

    /// The store directory, as text.
    pub fn store(&self) -> String {
        self.path("store").to_str().unwrap().to_owned()
    }

    /// The store directory.
    pub fn store_dir(&self) -> StoreDir {
        StoreDir::new(&self.store())
    }

    /// Rewrites `nix.conf` as [`BASE_CONF`] followed by `extra_conf`.
    pub fn write_conf(&self, extra_conf: &str) {
        fs::write(self.path("conf/nix.conf"), format!("{BASE_CONF}{extra_conf}")).unwrap();
    }

    /// Sets Nix's environment variables for this root on `cmd`.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("NIX_STORE_DIR", self.path("store"))
            .env("NIX_STATE_DIR", self.path("state"))
            .env("NIX_LOG_DIR", self.path("log"))
            .env("NIX_CONF_DIR", self.path("conf"))
            .env("NIX_DAEMON_SOCKET_PATH", self.socket())
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/cache"))
            .env_remove("NIX_CONFIG");
    }

    /// `casnix-daemon` for this root (serving the local store), its standard error appended
    /// to `daemon.log` in the root.
    pub fn daemon_command(&self) -> Command {
        self.daemon_command_under(&[])
    }

    /// [`daemon_command`](Self::daemon_command) run by `wrapper` (a program and its first
    /// arguments, such as `prlimit --nofile=1024:`), which then runs the daemon.
    pub fn daemon_command_under(&self, wrapper: &[&str]) -> Command {
        let mut cmd = match wrapper {
            [] => Command::new(DAEMON),
            [program, args @ ..] => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(DAEMON);
                cmd
            }
        };
        self.env(&mut cmd);
        let log = fs::OpenOptions::new().create(true).append(true).open(self.path("daemon.log")).unwrap();
        cmd.env("NIX_REMOTE", "local")
            .env("RUST_LOG", "daemon=debug,info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        cmd
    }

    /// What the daemons of this root have logged so far.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// A Nix client (`nix-store`, `nix`, ...) talking to the daemon on this root's socket.
    pub fn nix(&self, program: &str) -> Command {
        require(program);
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd.env("NIX_REMOTE", format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// A Nix client run as [`UNTRUSTED_USER`] (created if missing), with its own home.
    pub fn nix_untrusted(&self, program: &str) -> Command {
        require(program);
        require("setpriv");
        let uid = ensure_untrusted_user();
        let home = self.path("home-untrusted");
        if !home.exists() {
            fs::create_dir(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        }
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={UNTRUSTED_USER}"),
            &format!("--regid={UNTRUSTED_USER}"),
            "--clear-groups",
            "--",
            program,
        ]);
        self.env(&mut cmd);
        cmd.env("NIX_REMOTE", format!("unix://{}", self.socket().display()))
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The client configuration for this root's store directory.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig { store_dir: self.store_dir(), ..ClientConfig::default() }
    }

    /// A raw protocol client on this root's socket, after the handshake.
    pub async fn connect(&self) -> UnixClientConnection {
        ClientConnection::connect_unix(self.socket(), &self.client_config())
            .await
            .unwrap_or_else(|e| panic!("connecting to casnix-daemon: {e}\ndaemon log:\n{}", self.daemon_log()))
    }

    /// Writes `contents` to a new file `name` in the root and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).unwrap();
        path
    }
}

/// The uid of [`UNTRUSTED_USER`], creating the user when missing (the tests run as root).
pub fn ensure_untrusted_user() -> u32 {
    assert!(rustix::process::getuid().is_root(), "the untrusted-client tests run as root (as CI does)");
    let lookup = || {
        Command::new("id").args(["-u", UNTRUSTED_USER]).output().ok().filter(|o| o.status.success()).and_then(|o| {
            String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok()
        })
    };
    if let Some(uid) = lookup() {
        return uid;
    }
    require("useradd");
    let out = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", UNTRUSTED_USER])
        .output()
        .unwrap();
    // Another test may have created it at the same moment.
    let uid = lookup();
    assert!(uid.is_some(), "useradd failed: {}", String::from_utf8_lossy(&out.stderr));
    uid.unwrap()
}

/// A running `casnix-daemon` on its own root, killed on drop.
pub struct Daemon {
    /// The root it serves.
    pub root: TestRoot,
    child: Child,
}

impl std::ops::Deref for Daemon {
    type Target = TestRoot;

    fn deref(&self) -> &TestRoot {
        &self.root
    }
}

impl Daemon {
    /// A daemon on a new root whose `nix.conf` has `extra_conf` added.
    pub fn start(extra_conf: &str) -> Self {
        Self::start_in(TestRoot::new(extra_conf), &[])
    }

    /// A daemon on `root`, with extra command-line arguments; returns once it accepts
    /// connections.
    pub fn start_in(root: TestRoot, args: &[&str]) -> Self {
        let child = root.daemon_command().args(args).spawn().unwrap();
        Self::adopt(root, child)
    }

    /// A daemon on `root` started as `child` (for example by
    /// [`TestRoot::daemon_command_under`]); returns once it accepts connections.
    pub fn adopt(root: TestRoot, child: Child) -> Self {
        let mut daemon = Self { root, child };
        daemon.wait_for_socket();
        daemon
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("casnix-daemon exited early ({status}):\n{}", self.daemon_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("casnix-daemon does not listen on {}:\n{}", self.socket().display(), self.daemon_log());
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits up to `limit` for the daemon to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The number of open file descriptors of the daemon.
    pub fn fd_count(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid())).unwrap().count()
    }

    /// The daemon's resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` and returns everything.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd`, requires success, and returns its standard output, trimmed.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `cmd`, requires failure, and returns its standard error.
pub fn fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded, but should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A NAR holding one regular file with `contents`, and the info of the content-addressed
/// (`fixed:r:sha256`) path named `name` it makes in `store_dir`.
pub fn nar_path(store_dir: &StoreDir, name: &str, contents: &[u8]) -> (ValidPathInfo, Vec<u8>) {
    nar_path_referring(store_dir, name, contents, &[])
}

/// [`nar_path`] for a path that refers to `references` (as `builtins.path` makes them).
pub fn nar_path_referring(
    store_dir: &StoreDir,
    name: &str,
    contents: &[u8],
    references: &[StorePath],
) -> (ValidPathInfo, Vec<u8>) {
    let mut writer = Writer::new(Vec::new());
    writer.regular(false, contents.len() as u64, &mut &contents[..]).unwrap();
    let nar = writer.finish().unwrap();
    let hash = Hash::of(Algorithm::Sha256, &nar);
    let path = store_dir.make_fixed_output_path(name, true, &hash, references, false).unwrap();
    let mut info = ValidPathInfo::new(path, hash.clone());
    info.nar_size = nar.len() as u64;
    info.references = references.iter().cloned().collect();
    info.ca = Some(ContentAddress::parse(&format!("fixed:r:sha256:{}", hash.to_nix32())).unwrap());
    (info, nar)
}

/// Writes bytes to a raw socket connection, ignoring errors (the daemon may have closed it).
pub fn write_raw(stream: &mut std::os::unix::net::UnixStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}

/// Polls `condition` every 20 ms for up to `limit`; whether it became true.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `path` exists (for readable assertions).
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// A raw connection after the handshake: the socket, and the context requests are encoded
/// with (negotiated version, this root's store directory).
pub async fn raw_session(root: &TestRoot) -> (tokio::net::UnixStream, worker_protocol::WireCtx) {
    let mut stream = tokio::net::UnixStream::connect(root.socket()).await.unwrap();
    let handshake = worker_protocol::handshake::client_handshake(&mut stream, &Default::default()).await.unwrap();
    let ctx = worker_protocol::WireCtx::worker(handshake.negotiated.version).with_store_dir(root.store_dir());
    (stream, ctx)
}

/// `request` as bytes on the wire.
pub fn encode(request: &worker_protocol::ops::Request, ctx: &worker_protocol::WireCtx) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    request.encode(&mut out, ctx).unwrap();
    out.to_vec()
}

/// Reads from `stream` until the daemon closes it (or `limit` passes: then panics); returns
/// the number of bytes read.
pub async fn read_until_closed(stream: &mut tokio::net::UnixStream, limit: Duration) -> usize {
    use tokio::io::AsyncReadExt;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    let drained = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the daemon did not close the connection within {limit:?}");
    total
}

/// Polls the daemon log of `root` until it contains `needle` (or `limit` passes).
pub async fn log_shows(root: &TestRoot, needle: &str, limit: Duration) -> bool {
    log_shows_times(root, needle, 1, limit).await
}

/// Polls the daemon log of `root` until `times` of its lines contain `needle` (or `limit`
/// passes).
pub async fn log_shows_times(root: &TestRoot, needle: &str, times: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if root.daemon_log().lines().filter(|line| line.contains(needle)).count() >= times {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The build users' group the tests create: two members.
pub const BUILD_GROUP: &str = "casnix-nixbld";

/// Creates [`BUILD_GROUP`] and its members when missing (the tests run as root); returns
/// the members' uids, and a guard that keeps other tests of this process from using them
/// meanwhile: each test's daemon has its own state directory, so their user pools do not
/// see each other, and a build kills whatever still runs as its build user before starting
/// (as Nix's does) — another test's build, if two daemons picked the same user.
pub fn ensure_build_users() -> (Vec<u32>, std::sync::MutexGuard<'static, ()>) {
    use std::process::Command;
    static BUILD_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let exclusive = BUILD_USERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(rustix::process::getuid().is_root(), "the build-users tests run as root (as CI does)");
    require("useradd");
    let _ = Command::new("groupadd").args(["--system", BUILD_GROUP]).output();
    let mut uids = Vec::new();
    for n in 1..=2 {
        let name = format!("{BUILD_GROUP}{n}");
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--no-user-group", "--shell", "/usr/sbin/nologin"])
            .args(["-g", BUILD_GROUP, "-G", BUILD_GROUP, &name])
            .output();
        let out = Command::new("id").args(["-u", &name]).output().unwrap();
        uids.push(String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().unwrap());
    }
    (uids, exclusive)
}
