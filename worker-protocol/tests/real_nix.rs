//! Handshakes against the real Nix 2.8 (`nix-store`, `nix-daemon`; worker protocol 1.34), each on
//! an isolated store in a temporary directory. These tests need Nix installed
//! (`scripts/test-all.sh` installs it) and fail without it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use worker_protocol::handshake::{client_handshake, server_handshake, WorkerConfig};
use worker_protocol::stderr::{STDERR_LAST, STDERR_NEXT};
use worker_protocol::types::{ClientHandshakeInfo, TrustedFlag};
use worker_protocol::version::{WORKER_MAGIC_1, WORKER_MAGIC_2};
use worker_protocol::wire::io::{read_bool, read_string, read_u64, write_bytes, write_u64};
use worker_protocol::ProtocolVersion;

const LIMIT: Duration = Duration::from_secs(30);
/// Worker protocol version of Nix 2.8.
const NIX_2_8: ProtocolVersion = ProtocolVersion::new(1, 34);
/// `SetOptions`, the first operation a Nix client sends.
const OP_SET_OPTIONS: u64 = 19;
/// `IsValidPath`.
const OP_IS_VALID_PATH: u64 = 1;

/// An isolated Nix environment: store, state, log and config directories and a socket path.
struct NixEnv {
    dir: tempfile::TempDir,
}

impl NixEnv {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["store", "state", "log", "conf"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("conf/nix.conf"), "substituters =\nsandbox = false\nbuild-users-group =\n").unwrap();
        Self { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn socket(&self) -> PathBuf {
        self.path("socket")
    }

    fn command(&self, program: &str, remote: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_STORE_DIR", self.path("store"))
            .env("NIX_STATE_DIR", self.path("state"))
            .env("NIX_LOG_DIR", self.path("log"))
            .env("NIX_CONF_DIR", self.path("conf"))
            .env("NIX_DAEMON_SOCKET_PATH", self.socket())
            .env("NIX_REMOTE", remote)
            .env("HOME", self.path("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs Nix)");
}

async fn wait_for_socket(path: &Path, daemon: &mut Child) {
    for _ in 0..200 {
        if path.exists() {
            return;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("nix-daemon exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nix-daemon did not create {}", path.display());
}

/// Our server side against a real `nix-store` client: the handshake completes at 1.34, the
/// client's waiting-for-the-magic ordering works, and the client goes on to send `SetOptions`.
#[tokio::test]
async fn server_handshake_with_nix_2_8_client() {
    require("nix-store");
    let env = NixEnv::new();
    let listener = UnixListener::bind(env.socket()).unwrap();
    let path = format!("{}/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo", env.path("store").display());
    let client = env.command("nix-store", "daemon").args(["--query", "--hash", &path]).spawn().unwrap();

    let (mut stream, _) = timeout(LIMIT, listener.accept()).await.expect("client connects").unwrap();
    let info = ClientHandshakeInfo {
        daemon_nix_version: Some("casnix-test".into()),
        remote_trusts_us: Some(TrustedFlag::Trusted),
    };
    let hs = timeout(LIMIT, server_handshake(&mut stream, &WorkerConfig::default(), &info, &["hello from casnix".into()]))
        .await
        .expect("handshake finishes")
        .unwrap();
    assert_eq!(hs.negotiated.version, NIX_2_8);
    assert!(hs.negotiated.features.is_empty());
    assert_eq!(hs.client.cpu_affinity, None);
    let op = timeout(LIMIT, read_u64(&mut stream)).await.expect("client sends an operation").unwrap();
    assert_eq!(op, OP_SET_OPTIONS);
    drop(stream);

    let out = timeout(LIMIT, client.wait_with_output()).await.expect("client exits").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The startup message went through the logger channel to the user.
    assert!(stderr.contains("hello from casnix"), "{stderr}");
}

/// Our client side against a real `nix-daemon`: the handshake completes at 1.34 with the daemon's
/// version string, and the connection is in step for an operation afterwards.
#[tokio::test]
async fn client_handshake_with_nix_2_8_daemon() {
    require("nix-daemon");
    let env = NixEnv::new();
    let mut daemon = env.command("nix-daemon", "local").spawn().unwrap();
    wait_for_socket(&env.socket(), &mut daemon).await;

    let mut stream = UnixStream::connect(env.socket()).await.unwrap();
    let hs = timeout(LIMIT, client_handshake(&mut stream, &WorkerConfig::default()))
        .await
        .expect("handshake finishes")
        .unwrap();
    assert_eq!(hs.negotiated.version, NIX_2_8);
    assert_eq!(hs.info.daemon_nix_version.as_deref(), Some("2.8.0"));
    assert_eq!(hs.info.remote_trusts_us, None, "1.34 carries no trust flag");

    // IsValidPath on a path that does not exist: logger messages, STDERR_LAST, then false.
    let path = format!("{}/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo", env.path("store").display());
    write_u64(&mut stream, OP_IS_VALID_PATH).await.unwrap();
    write_bytes(&mut stream, path.as_bytes()).await.unwrap();
    let valid = timeout(LIMIT, async {
        loop {
            match read_u64(&mut stream).await.unwrap() {
                STDERR_LAST => break,
                STDERR_NEXT => drop(read_string(&mut stream, 1 << 20).await.unwrap()),
                other => panic!("unexpected logger message {other:#x}"),
            }
        }
        read_bool(&mut stream, "valid").await.unwrap()
    })
    .await
    .expect("daemon answers");
    assert!(!valid);

    drop(stream);
    daemon.kill().await.unwrap();
}

/// The version floor, both ways: the real daemon drops a client older than 1.10 right after
/// answering its magic, and our client refuses a daemon below its configured minimum.
#[tokio::test]
async fn version_floor_with_nix_2_8_daemon() {
    require("nix-daemon");
    let env = NixEnv::new();
    let mut daemon = env.command("nix-daemon", "local").spawn().unwrap();
    wait_for_socket(&env.socket(), &mut daemon).await;

    let mut stream = UnixStream::connect(env.socket()).await.unwrap();
    write_u64(&mut stream, WORKER_MAGIC_1).await.unwrap();
    write_u64(&mut stream, 0x0109).await.unwrap();
    assert_eq!(read_u64(&mut stream).await.unwrap(), WORKER_MAGIC_2);
    assert_eq!(read_u64(&mut stream).await.unwrap(), NIX_2_8.to_wire());
    let mut rest = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut rest)).await.expect("daemon closes").unwrap();
    assert!(rest.is_empty(), "the daemon sent {rest:?} to a 1.9 client");

    let mut stream = UnixStream::connect(env.socket()).await.unwrap();
    let cfg = WorkerConfig { min_version: ProtocolVersion::new(1, 35), ..WorkerConfig::default() };
    let r = timeout(LIMIT, client_handshake(&mut stream, &cfg)).await.expect("handshake ends");
    assert!(matches!(r, Err(worker_protocol::ProtocolError::UnsupportedVersion { .. })), "{r:?}");
    daemon.kill().await.unwrap();
}
