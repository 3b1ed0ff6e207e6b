//! An isolated Nix 2.8 environment with a running `nix-daemon`, for tests of our client against
//! the real daemon, and the real `nix`/`nix-store` commands talking to the same daemon.

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use nix_formats::path_info::{JsonOptions, ValidPathInfo};
use nix_formats::store_path::{StoreDir, StorePath};
use serde_json::Value;
use tokio::process::{Child, Command};
use worker_protocol::connection::{ClientConfig, ClientConnection, UnixClientConnection};
use worker_protocol::handshake::WorkerConfig;
use worker_protocol::ProtocolVersion;

/// How long one Nix command may take.
pub const LIMIT: Duration = Duration::from_secs(120);

/// Fails the test if `program` is not installed.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs Nix)");
}

/// Store, state, log and config directories in a temporary directory, and a `nix-daemon`
/// serving them on a socket there (killed when this is dropped).
pub struct NixDaemon {
    pub dir: tempfile::TempDir,
    daemon: Child,
}

impl NixDaemon {
    /// Creates the environment and starts the daemon (with `NIX_REMOTE=local`, so it serves its
    /// own store rather than connecting to its socket).
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// [`Self::start`] with `extra` appended to `nix.conf`.
    pub async fn start_with(extra: &str) -> Self {
        require("nix-daemon");
        let dir = tempfile::Builder::new().prefix("casnix-daemon-").tempdir_in("/tmp").unwrap();
        for sub in ["store", "state", "log", "conf", "home"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("conf/nix.conf"),
            format!("substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n{extra}"),
        )
        .unwrap();
        let daemon = command_in(dir.path(), "nix-daemon", "local").spawn().unwrap();
        let mut this = Self { dir, daemon };
        this.wait_for_socket().await;
        this
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
    pub fn store_dir(&self) -> StoreDir {
        StoreDir::new(self.path("store").to_str().unwrap())
    }

    /// The full path of `path`.
    pub fn print(&self, path: &StorePath) -> String {
        self.store_dir().print(path)
    }

    /// `program` in this environment with `NIX_REMOTE=remote`.
    pub fn command(&self, program: &str, remote: &str) -> Command {
        command_in(self.dir.path(), program, remote)
    }

    /// Runs `program args` as a client of the daemon.
    pub async fn nix(&self, program: &str, args: &[&str]) -> Output {
        require(program);
        let child = self.command(program, "daemon").args(args).output();
        tokio::time::timeout(LIMIT, child).await.expect("the command finishes").unwrap()
    }

    /// Runs `program args` as a client of the daemon, requires success, and returns stdout.
    pub async fn nix_ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.nix(program, args).await;
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `program args` as a client of the daemon, requires success, and returns raw stdout.
    pub async fn nix_bytes(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let out = self.nix(program, args).await;
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Waits until a whole client session works: the first connection also creates the store's
    /// database, and connections racing with that can be dropped.
    async fn wait_for_socket(&mut self) {
        for _ in 0..400 {
            if self.socket().exists() && self.nix("nix", &["store", "ping"]).await.status.success() {
                return;
            }
            if let Ok(Some(status)) = self.daemon.try_wait() {
                panic!("nix-daemon exited early: {status}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nix-daemon does not accept connections on {}", self.socket().display());
    }

    /// The client configuration for this store, offering `version` (accepting down to 1.10).
    pub fn client_config(&self, version: ProtocolVersion) -> ClientConfig {
        ClientConfig {
            worker: WorkerConfig { version, min_version: ProtocolVersion::new(1, 10), ..WorkerConfig::default() },
            store_dir: self.store_dir(),
            ..ClientConfig::default()
        }
    }

    /// Our client, connected at the newest version both speak.
    pub async fn connect(&self) -> UnixClientConnection {
        self.connect_at(worker_protocol::version::WORKER_PROTOCOL_VERSION).await
    }

    /// Our client, offering at most `version`.
    pub async fn connect_at(&self, version: ProtocolVersion) -> UnixClientConnection {
        ClientConnection::connect_unix(self.socket(), &self.client_config(version)).await.unwrap()
    }

    /// `nix path-info --json` of `paths` as Nix 2.8 prints it (an array with `path` keys and
    /// empty fields left out), turned into Nix 2.26's per-path objects (every field present,
    /// `null` or empty when unset), keyed by path.
    pub async fn nix_path_info_json(&self, paths: &[String], closure_size: bool) -> serde_json::Map<String, Value> {
        let mut args = vec!["path-info", "--json"];
        if closure_size {
            args.push("--closure-size");
        }
        args.extend(paths.iter().map(String::as_str));
        let text = self.nix_ok("nix", &args).await;
        nix_2_8_path_info_to_2_26(&text)
    }

    /// Asserts that `info` is what the real `nix path-info --json` reports for its path.
    pub async fn assert_info_matches_nix(&self, info: &ValidPathInfo) {
        let path = self.print(&info.path);
        let theirs = self.nix_path_info_json(std::slice::from_ref(&path), false).await;
        let ours = info.to_json(&self.store_dir(), &JsonOptions::IMPURE);
        assert_eq!(theirs.get(&path), Some(&ours), "path info of {path}");
    }
}

/// `program` with the environment variables of the environment in `dir`.
fn command_in(dir: &Path, program: &str, remote: &str) -> Command {
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
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Converts `nix path-info --json` output of Nix 2.8 to the shape Nix 2.26 prints: an object
/// keyed by path whose values have every field (`ca`, `deriver`, `registrationTime` as `null`,
/// `ultimate` false and `signatures` empty when Nix 2.8 leaves them out).
pub fn nix_2_8_path_info_to_2_26(text: &str) -> serde_json::Map<String, Value> {
    let array: Vec<Value> = serde_json::from_str(text).unwrap();
    array
        .into_iter()
        .map(|v| {
            let mut obj = v.as_object().unwrap().clone();
            let path = obj.remove("path").unwrap().as_str().unwrap().to_owned();
            if obj.remove("valid") == Some(Value::Bool(false)) {
                return (path, Value::Null);
            }
            for (key, default) in [
                ("ca", Value::Null),
                ("deriver", Value::Null),
                ("registrationTime", Value::Null),
                ("ultimate", Value::Bool(false)),
                ("signatures", Value::Array(vec![])),
            ] {
                obj.entry(key).or_insert(default);
            }
            (path, Value::Object(obj))
        })
        .collect()
}
