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

/// Connects to the daemon's socket, waiting (up to 10 s) until it listens: the socket file
/// appears before the daemon calls `listen`, so a connection can be refused at first.
async fn connect(path: &Path, daemon: &mut Child) -> UnixStream {
    for _ in 0..200 {
        if let Ok(stream) = UnixStream::connect(path).await {
            return stream;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("nix-daemon exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nix-daemon does not accept connections on {}", path.display());
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

    let mut stream = connect(&env.socket(), &mut daemon).await;
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

    let mut stream = connect(&env.socket(), &mut daemon).await;
    write_u64(&mut stream, WORKER_MAGIC_1).await.unwrap();
    write_u64(&mut stream, 0x0109).await.unwrap();
    assert_eq!(read_u64(&mut stream).await.unwrap(), WORKER_MAGIC_2);
    assert_eq!(read_u64(&mut stream).await.unwrap(), NIX_2_8.to_wire());
    let mut rest = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut rest)).await.expect("daemon closes").unwrap();
    assert!(rest.is_empty(), "the daemon sent {rest:?} to a 1.9 client");

    let mut stream = connect(&env.socket(), &mut daemon).await;
    let cfg = WorkerConfig { min_version: ProtocolVersion::new(1, 35), ..WorkerConfig::default() };
    let r = timeout(LIMIT, client_handshake(&mut stream, &cfg)).await.expect("handshake ends");
    assert!(matches!(r, Err(worker_protocol::ProtocolError::UnsupportedVersion { .. })), "{r:?}");
    daemon.kill().await.unwrap();
}

/// `AddToStore`.
const OP_ADD_TO_STORE: u64 = 7;

/// Skips one logger message other than `STDERR_LAST`/`STDERR_ERROR` (activities and log lines).
async fn skip_log_message<R: tokio::io::AsyncRead + Unpin>(r: &mut R, code: u64) {
    use worker_protocol::stderr::{STDERR_RESULT, STDERR_START_ACTIVITY, STDERR_STOP_ACTIVITY};
    async fn skip_fields<R: tokio::io::AsyncRead + Unpin>(r: &mut R) {
        for _ in 0..read_u64(r).await.unwrap() {
            match read_u64(r).await.unwrap() {
                0 => drop(read_u64(r).await.unwrap()),
                1 => drop(read_string(r, 1 << 20).await.unwrap()),
                other => panic!("field type {other}"),
            }
        }
    }
    match code {
        STDERR_NEXT => drop(read_string(r, 1 << 20).await.unwrap()),
        STDERR_START_ACTIVITY => {
            for _ in 0..3 {
                read_u64(r).await.unwrap();
            }
            read_string(r, 1 << 20).await.unwrap();
            skip_fields(r).await;
            read_u64(r).await.unwrap();
        }
        STDERR_STOP_ACTIVITY => drop(read_u64(r).await.unwrap()),
        STDERR_RESULT => {
            read_u64(r).await.unwrap();
            read_u64(r).await.unwrap();
            skip_fields(r).await;
        }
        other => panic!("unexpected logger message {other:#x}"),
    }
}

/// A 1.5 MiB NAR sent to the real daemon through [`FramedWriter`] (`AddToStore`, 1.25 and later),
/// while the daemon's log is read at the same time; its answer, a `ValidPathInfo`, is decoded
/// with [`WireReader`] and matches the path and hashes computed here.
#[tokio::test]
async fn framed_add_to_store_with_nix_2_8_daemon() {
    use nix_formats::content_address::{ContentAddress, Method};
    use nix_formats::hash::{Algorithm, Hash};
    use nix_formats::path_info::ValidPathInfo;
    use nix_formats::store_path::StoreDir;
    use tokio::io::AsyncWriteExt;
    use worker_protocol::framed::FramedWriter;
    use worker_protocol::wire::io::write_string_list;
    use worker_protocol::wire::WireReader;
    use worker_protocol::WireCtx;

    require("nix-daemon");
    let env = NixEnv::new();
    let mut daemon = env.command("nix-daemon", "local").spawn().unwrap();
    let mut stream = connect(&env.socket(), &mut daemon).await;
    let hs = client_handshake(&mut stream, &WorkerConfig::default()).await.unwrap();

    let contents: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let mut nar = nix_formats::nar::Writer::new(Vec::new());
    nar.regular_bytes(false, &contents).unwrap();
    let nar = nar.finish().unwrap();
    let nar_hash = Hash::of(Algorithm::Sha256, &nar);
    let store_dir = StoreDir::new(env.path("store").to_str().unwrap());
    let expected_path = ContentAddress { method: Method::Nar, hash: nar_hash.clone() }
        .store_path(&store_dir, "framed-test", std::iter::empty(), false)
        .unwrap();

    let (rd, mut wr) = stream.into_split();
    let ctx = WireCtx::worker(hs.negotiated.version).with_store_dir(store_dir.clone());
    let reader_ctx = ctx.clone();
    let reader = tokio::spawn(async move {
        let mut r = WireReader::new(rd);
        loop {
            match read_u64(&mut r).await.unwrap() {
                STDERR_LAST => break,
                code => skip_log_message(&mut r, code).await,
            }
        }
        r.read_value::<ValidPathInfo>(&reader_ctx).await.unwrap()
    });
    write_u64(&mut wr, OP_ADD_TO_STORE).await.unwrap();
    write_bytes(&mut wr, b"framed-test").await.unwrap();
    write_bytes(&mut wr, b"fixed:r:sha256").await.unwrap();
    write_string_list(&mut wr, []).await.unwrap();
    write_u64(&mut wr, 0).await.unwrap(); // no repair
    let mut framed = FramedWriter::new(wr);
    for piece in nar.chunks(10_007) {
        framed.write_all(piece).await.unwrap();
    }
    let _wr = framed.finish().await.unwrap();

    let info = timeout(LIMIT, reader).await.expect("daemon answers").unwrap();
    assert_eq!(info.path, expected_path);
    assert_eq!(info.nar_hash, nar_hash);
    assert_eq!(info.nar_size, nar.len() as u64);
    assert_eq!(info.ca, Some(ContentAddress { method: Method::Nar, hash: nar_hash }));
    let on_disk = std::fs::read(store_dir.print(&expected_path)).unwrap();
    assert_eq!(on_disk, contents);
    daemon.kill().await.unwrap();
}

/// Our server side receiving a framed stream from the real `nix-store --add`: `SetOptions`, then
/// `AddToStore` with the NAR in frames, read with [`FramedReader`]; our `ValidPathInfo` answer
/// is accepted by the client, which prints the path we computed.
#[tokio::test]
async fn framed_add_from_nix_2_8_client() {
    use nix_formats::content_address::{ContentAddress, Method};
    use nix_formats::hash::{Algorithm, Hash};
    use nix_formats::store_path::StoreDir;
    use tokio::io::AsyncWriteExt;
    use worker_protocol::framed::FramedReader;
    use worker_protocol::types::UnkeyedValidPathInfo;
    use worker_protocol::wire::io::{read_string_list, write_value};
    use worker_protocol::WireCtx;

    require("nix-store");
    let env = NixEnv::new();
    let listener = UnixListener::bind(env.socket()).unwrap();
    let contents: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = env.path("state/payload.bin");
    std::fs::write(&file, &contents).unwrap();
    let client = env.command("nix-store", "daemon").arg("--add").arg(&file).spawn().unwrap();

    let (mut stream, _) = timeout(LIMIT, listener.accept()).await.expect("client connects").unwrap();
    let info = ClientHandshakeInfo { daemon_nix_version: Some("casnix-test".into()), remote_trusts_us: None };
    let hs = server_handshake(&mut stream, &WorkerConfig::default(), &info, &[]).await.unwrap();
    let store_dir = StoreDir::new(env.path("store").to_str().unwrap());
    let ctx = WireCtx::worker(hs.negotiated.version).with_store_dir(store_dir.clone());

    // SetOptions: twelve numbers, then the overridden settings as string pairs.
    assert_eq!(read_u64(&mut stream).await.unwrap(), OP_SET_OPTIONS);
    for _ in 0..12 {
        read_u64(&mut stream).await.unwrap();
    }
    for _ in 0..read_u64(&mut stream).await.unwrap() * 2 {
        read_string(&mut stream, 1 << 20).await.unwrap();
    }
    write_u64(&mut stream, STDERR_LAST).await.unwrap();
    stream.flush().await.unwrap();

    assert_eq!(read_u64(&mut stream).await.unwrap(), OP_ADD_TO_STORE);
    let name = read_string(&mut stream, 1 << 10).await.unwrap();
    assert_eq!(name, "payload.bin");
    assert_eq!(read_string(&mut stream, 1 << 10).await.unwrap(), "fixed:r:sha256");
    assert!(read_string_list(&mut stream, 10, 1 << 10).await.unwrap().is_empty());
    assert!(!read_bool(&mut stream, "repair").await.unwrap());
    let mut framed = FramedReader::new(&mut stream, 1 << 20);
    let mut nar = Vec::new();
    timeout(LIMIT, framed.read_to_end(&mut nar)).await.expect("stream ends").unwrap();
    assert!(framed.is_finished());

    let mut expected_nar = nix_formats::nar::Writer::new(Vec::new());
    expected_nar.regular_bytes(false, &contents).unwrap();
    assert_eq!(nar, expected_nar.finish().unwrap());
    let nar_hash = Hash::of(Algorithm::Sha256, &nar);
    let ca = ContentAddress { method: Method::Nar, hash: nar_hash.clone() };
    let path = ca.store_path(&store_dir, &name, std::iter::empty(), false).unwrap();
    let mut reply = UnkeyedValidPathInfo::new(nar_hash);
    reply.nar_size = nar.len() as u64;
    reply.ca = Some(ca);
    write_u64(&mut stream, STDERR_LAST).await.unwrap();
    write_value(&mut stream, &reply.with_path(path.clone()), &ctx).await.unwrap();
    stream.flush().await.unwrap();

    let out = timeout(LIMIT, client.wait_with_output()).await.expect("client exits").unwrap();
    drop(stream);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), store_dir.print(&path));
}
