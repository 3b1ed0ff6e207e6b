//! The logger channel against the real Nix 2.8 (worker protocol 1.34): our daemon side talking
//! to `nix-store` (log lines, activities, results, both error forms, the pre-1.20 downgrade, and
//! data pulled with `STDERR_READ` from `nix-store --import`), and our client side talking to
//! `nix-daemon` (data pushed with `STDERR_WRITE` by `ExportPath`, pulled from us by
//! `ImportPaths`, and its errors). Each test uses an isolated store in a temporary directory.
//! These tests need Nix installed (`scripts/test-all.sh` installs it) and fail without it.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use worker_protocol::handshake::{server_handshake, WorkerConfig};
use worker_protocol::logger::{
    ActivityId, ActivityType, Field, RemoteError, ResultType, ServerLogger, Verbosity,
};
use worker_protocol::types::ClientHandshakeInfo;
use worker_protocol::wire::io::{read_string, read_string_list, read_u64};
use worker_protocol::ProtocolVersion;

const LIMIT: Duration = Duration::from_secs(60);
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
        let conf = "substituters =\nsandbox = false\nbuild-users-group =\nrequire-sigs = false\n";
        std::fs::write(dir.path().join("conf/nix.conf"), conf).unwrap();
        Self { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn socket(&self) -> PathBuf {
        self.path("socket")
    }

    fn store_path(&self, base: &str) -> String {
        format!("{}/{base}", self.path("store").display())
    }

    /// `program` in this environment, talking to `remote`.
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

    /// `program` talking to our server on this environment's socket.
    fn client(&self, program: &str) -> Command {
        self.command(program, &format!("unix://{}", self.socket().display()))
    }

    /// Runs `nix-store args` on the local store of this environment and returns its stdout.
    async fn local_nix_store(&self, args: &[&str]) -> Vec<u8> {
        let out = self.command("nix-store", "local").args(args).output().await.unwrap();
        assert!(out.status.success(), "nix-store {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs Nix)");
}

/// Accepts the client's connection, does the server handshake at `version` at most, and reads
/// the client's `SetOptions`; returns the connection's halves and the verbosity it asked for.
async fn accept(listener: &UnixListener, version: ProtocolVersion) -> (OwnedReadHalf, OwnedWriteHalf, ProtocolVersion, Verbosity) {
    let (mut stream, _) = timeout(LIMIT, listener.accept()).await.expect("client connects").unwrap();
    let cfg = WorkerConfig { version, min_version: ProtocolVersion::new(1, 10), ..WorkerConfig::default() };
    let info = ClientHandshakeInfo { daemon_nix_version: Some("casnix-test".into()), remote_trusts_us: None };
    let hs = server_handshake(&mut stream, &cfg, &info, &[]).await.unwrap();
    let verbosity = read_set_options(&mut stream).await;
    let (r, w) = stream.into_split();
    (r, w, hs.negotiated.version, verbosity)
}

/// Reads `SetOptions` (twelve numbers, the fourth the verbosity, then the overridden settings
/// as string pairs) and returns the verbosity.
async fn read_set_options(stream: &mut UnixStream) -> Verbosity {
    assert_eq!(read_u64(stream).await.unwrap(), OP_SET_OPTIONS);
    let mut numbers = [0u64; 12];
    for n in &mut numbers {
        *n = read_u64(stream).await.unwrap();
    }
    for _ in 0..read_u64(stream).await.unwrap() * 2 {
        read_string(stream, 1 << 20).await.unwrap();
    }
    Verbosity::from_wire(numbers[3]).unwrap()
}

async fn finish(client: Child) -> (Output, String) {
    let out = timeout(LIMIT, client.wait_with_output()).await.expect("client exits").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// Answers `SetOptions` with a few messages, then fails the client's `IsValidPath` after more
/// log output: lines, an activity with a build log line, and an error with a trace.
async fn talk_to_check_validity(version: ProtocolVersion, extra_args: &[&str]) -> (Output, String, Verbosity) {
    require("nix-store");
    let env = NixEnv::new();
    let listener = UnixListener::bind(env.socket()).unwrap();
    let path = env.store_path("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo");
    let client = env.client("nix-store").args(extra_args).args(["--check-validity", &path]).spawn().unwrap();

    let (mut r, w, negotiated, verbosity) = accept(&listener, version).await;
    assert_eq!(negotiated, version.min(ProtocolVersion::new(1, 34)));
    let mut logger = ServerLogger::new(w, negotiated);
    logger.set_verbosity(verbosity);
    logger.start_work().await.unwrap();
    logger.log(Verbosity::Error, "casnix: options received").await.unwrap();
    logger.last().await.unwrap();

    assert_eq!(read_u64(&mut r).await.unwrap(), OP_IS_VALID_PATH);
    assert_eq!(read_string(&mut r, 1 << 10).await.unwrap(), path);
    logger.start_work().await.unwrap();
    logger.log(Verbosity::Info, "casnix: an info line").await.unwrap();
    logger.log(Verbosity::Debug, "casnix: a debug line").await.unwrap();
    let fields = vec![Field::from(path.as_str()), Field::from(""), Field::Int(1), Field::Int(1)];
    let id = logger
        .start_activity(Verbosity::Info, ActivityType::Build, "casnix: building foo", fields, ActivityId::NONE)
        .await
        .unwrap();
    logger.result(id, ResultType::BuildLogLine, vec![Field::from("casnix: a build log line")]).await.unwrap();
    logger.stop_activity(id).await.unwrap();
    let error = RemoteError::new("casnix: the test daemon refuses").with_status(100).with_trace("casnix: while testing");
    logger.error(&error).await.unwrap();

    let (out, stderr) = finish(client).await;
    drop(r);
    (out, stderr, verbosity)
}

/// At 1.34 (structured errors, activities): every line, the activity and its build log line
/// reach the user; the debug line does not (the client asked for Info); the error is ours and
/// its exit status is 1 (the structured form carries none).
#[tokio::test]
async fn nix_2_8_client_shows_our_messages() {
    let (out, stderr, verbosity) = talk_to_check_validity(ProtocolVersion::new(1, 38), &[]).await;
    assert_eq!(verbosity, Verbosity::Info);
    for text in ["casnix: options received", "casnix: an info line", "casnix: building foo...", "casnix: a build log line"] {
        assert!(stderr.contains(text), "missing {text:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("debug line"), "{stderr}");
    assert!(stderr.contains("error: casnix: the test daemon refuses"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

/// With `--debug` the client asks for Debug, and the debug line comes through; with
/// `--show-trace` it prints the error's trace.
#[tokio::test]
async fn nix_2_8_client_verbosity_lets_debug_through() {
    let (_, stderr, verbosity) = talk_to_check_validity(ProtocolVersion::new(1, 38), &["--debug", "--show-trace"]).await;
    assert_eq!(verbosity, Verbosity::Debug);
    assert!(stderr.contains("casnix: a debug line"), "{stderr}");
    assert!(stderr.contains("casnix: while testing"), "{stderr}");
}

/// At 1.25 the error goes in the old form: message (with its trace folded in) and exit status,
/// which the client exits with.
#[tokio::test]
async fn nix_2_8_client_old_error_form() {
    let (out, stderr, _) = talk_to_check_validity(ProtocolVersion::new(1, 25), &[]).await;
    assert!(stderr.contains("error: casnix: the test daemon refuses"), "{stderr}");
    assert!(stderr.contains("casnix: while testing"), "{stderr}");
    assert!(stderr.contains("casnix: building foo..."), "{stderr}");
    assert_eq!(out.status.code(), Some(100), "{stderr}");
}

/// At 1.19 there are no activities: the activity arrives as the line `text...` and its build
/// log line is dropped, as Nix's daemon does for such clients.
#[tokio::test]
async fn nix_2_8_client_before_activities() {
    let (out, stderr, _) = talk_to_check_validity(ProtocolVersion::new(1, 19), &[]).await;
    assert!(stderr.contains("casnix: an info line"), "{stderr}");
    assert!(stderr.contains("casnix: building foo..."), "{stderr}");
    assert!(!stderr.contains("casnix: a build log line"), "{stderr}");
    assert!(stderr.contains("error: casnix: the test daemon refuses"), "{stderr}");
    assert_eq!(out.status.code(), Some(100), "{stderr}");
}

/// `AddToStoreNar`.
const OP_ADD_TO_STORE_NAR: u64 = 39;
/// `ExportPath`.
const OP_EXPORT_PATH: u64 = 16;
/// `ImportPaths`.
const OP_IMPORT_PATHS: u64 = 27;
/// `QueryMissing`.
const OP_QUERY_MISSING: u64 = 40;

/// Puts a file of `len` bytes into the local store of `env` and returns its path and the bytes
/// of `nix-store --export` for it.
async fn add_and_export(env: &NixEnv, len: usize) -> (String, Vec<u8>, Vec<u8>) {
    let contents: Vec<u8> = (0..len).map(|i| (i * 13 % 256) as u8).collect();
    let file = env.path("state/payload.bin");
    std::fs::write(&file, &contents).unwrap();
    let out = env.local_nix_store(&["--add", file.to_str().unwrap()]).await;
    let path = String::from_utf8(out).unwrap().trim().to_owned();
    let export = env.local_nix_store(&["--export", &path]).await;
    (path, export, contents)
}

/// Below 1.23 a Nix client sends the NAR of `AddToStoreNar` through `STDERR_READ`: the real
/// `nix-store --import` answers our `PullSource` chunk by chunk, the NAR arrives whole and
/// matches the hash the client announced, and the client prints the path.
#[tokio::test]
async fn nix_2_8_client_answers_our_data_requests() {
    use nix_formats::hash::{Algorithm, Hash, Hasher};

    require("nix-store");
    let env = NixEnv::new();
    let (path, export, _) = add_and_export(&env, 3 << 20).await;
    let export_file = env.path("state/export");
    std::fs::write(&export_file, &export).unwrap();
    let listener = UnixListener::bind(env.socket()).unwrap();
    let client = env
        .client("nix-store")
        .arg("--import")
        .stdin(std::fs::File::open(&export_file).unwrap())
        .spawn()
        .unwrap();

    let (mut r, w, version, verbosity) = accept(&listener, ProtocolVersion::new(1, 22)).await;
    assert_eq!(version, ProtocolVersion::new(1, 22));
    let mut logger = ServerLogger::new(w, version);
    logger.set_verbosity(verbosity);
    logger.start_work().await.unwrap();
    logger.last().await.unwrap();

    // AddToStoreNar below 1.23: the path info, then the NAR on request.
    assert_eq!(read_u64(&mut r).await.unwrap(), OP_ADD_TO_STORE_NAR);
    assert_eq!(read_string(&mut r, 1 << 10).await.unwrap(), path);
    assert_eq!(read_string(&mut r, 1 << 10).await.unwrap(), "", "no deriver");
    let nar_hash = Hash::parse_bare(&read_string(&mut r, 1 << 10).await.unwrap(), Algorithm::Sha256).unwrap();
    assert!(read_string_list(&mut r, 10, 1 << 10).await.unwrap().is_empty(), "no references");
    let _registration_time = read_u64(&mut r).await.unwrap();
    let nar_size = read_u64(&mut r).await.unwrap();
    let _ultimate = read_u64(&mut r).await.unwrap();
    let _sigs = read_string_list(&mut r, 10, 1 << 10).await.unwrap();
    let _ca = read_string(&mut r, 1 << 10).await.unwrap();
    let _repair = read_u64(&mut r).await.unwrap();
    let _dont_check_sigs = read_u64(&mut r).await.unwrap();

    logger.start_work().await.unwrap();
    logger.log(Verbosity::Info, "casnix: pulling the NAR").await.unwrap();
    let mut source = logger.pull_source(&mut r).unwrap();
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut nar_start = Vec::new();
    let mut buf = vec![0u8; 10_000];
    let mut limited = (&mut source).take(nar_size);
    loop {
        let n = timeout(LIMIT, limited.read(&mut buf)).await.expect("client answers").unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if nar_start.len() < 64 {
            nar_start.extend_from_slice(&buf[..n.min(64)]);
        }
    }
    assert_eq!(source.received(), nar_size, "exactly the NAR was asked for and sent");
    assert_eq!(hasher.finish(), nar_hash);
    assert_eq!(&nar_start[8..21], b"nix-archive-1");
    logger.last().await.unwrap();

    let (out, stderr) = finish(client).await;
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("casnix: pulling the NAR"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), path);
    assert!(nar_size > 3 << 20);
}

/// Connects to the daemon's socket, waiting (up to 10 s) until it listens.
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

/// Our client side against the real `nix-daemon`: `SetOptions` asking for errors only, then
/// `QueryMissing`, whose debug-level activity still arrives (daemons never filter activities);
/// `ExportPath` data through `STDERR_WRITE` equals what `nix-store --export` writes;
/// `ImportPaths` pulls that data back from us through `STDERR_READ`; and a bad request comes
/// back as the daemon's structured error.
#[tokio::test]
async fn our_client_with_nix_2_8_daemon() {
    use bytes::BytesMut;
    use tokio::io::AsyncWriteExt;
    use worker_protocol::handshake::client_handshake;
    use worker_protocol::logger::{process_stderr, LogCollector, LogMessage};
    use worker_protocol::wire::encoder::{put_str, put_u64};
    use worker_protocol::{ProtocolError, WireCtx};

    require("nix-daemon");
    let env = NixEnv::new();
    let (path, export, contents) = add_and_export(&env, 200_000).await;
    let mut daemon = env.command("nix-daemon", "local").spawn().unwrap();
    let daemon_pid = u64::from(daemon.id().unwrap());
    let mut stream = connect(&env.socket(), &mut daemon).await;
    let hs = client_handshake(&mut stream, &WorkerConfig::default()).await.unwrap();
    let ctx = WireCtx::worker(hs.negotiated.version);
    let (mut r, mut w) = stream.into_split();

    // SetOptions: keepFailed, keepGoing, tryFallback, verbosity (Error), maxBuildJobs,
    // maxSilentTime, useBuildHook, verboseBuild, logType, printBuildTrace, buildCores,
    // useSubstitutes, then no overridden settings.
    let mut req = BytesMut::new();
    for n in [OP_SET_OPTIONS, 0, 0, 0, 0, 1, 0, 1, 7, 0, 0, 0, 0, 0] {
        put_u64(&mut req, n);
    }
    w.write_all(&req).await.unwrap();
    let mut sink = LogCollector::new(1 << 20);
    timeout(LIMIT, process_stderr(&mut r, &mut w, &ctx, &mut sink, None)).await.unwrap().unwrap();

    // QueryMissing of nothing: the daemon's "querying info about missing paths" activity
    // (level Debug) comes although the client asked for errors only.
    let mut req = BytesMut::new();
    put_u64(&mut req, OP_QUERY_MISSING);
    put_u64(&mut req, 0);
    w.write_all(&req).await.unwrap();
    let mut sink = LogCollector::new(1 << 20);
    timeout(LIMIT, process_stderr(&mut r, &mut w, &ctx, &mut sink, None)).await.unwrap().unwrap();
    for _ in 0..3 {
        assert!(read_string_list(&mut r, 10, 1 << 10).await.unwrap().is_empty());
    }
    let (_download, _nar) = (read_u64(&mut r).await.unwrap(), read_u64(&mut r).await.unwrap());
    let started = sink.messages.iter().find_map(|m| match m {
        LogMessage::StartActivity { id, level, kind, text, .. } => Some((*id, *level, *kind, text.clone())),
        _ => None,
    });
    let (id, level, kind, text) = started.unwrap_or_else(|| panic!("no activity in {:?}", sink.messages));
    assert_eq!((level, kind), (Verbosity::Debug, ActivityType::Unknown(0)));
    assert_eq!(text, b"querying info about missing paths");
    assert_eq!(id.0 >> 32, daemon_pid, "Nix's activity ids carry the process id");
    assert!(sink.messages.contains(&LogMessage::StopActivity { id }), "{:?}", sink.messages);

    // ExportPath: the data comes through STDERR_WRITE, then the reply 1.
    let mut req = BytesMut::new();
    put_u64(&mut req, OP_EXPORT_PATH);
    put_str(&mut req, &path);
    put_u64(&mut req, 0);
    w.write_all(&req).await.unwrap();
    let mut sink = LogCollector::new(16 << 20);
    timeout(LIMIT, process_stderr(&mut r, &mut w, &ctx, &mut sink, None)).await.unwrap().unwrap();
    assert_eq!(read_u64(&mut r).await.unwrap(), 1);
    let mut framed = 1u64.to_le_bytes().to_vec();
    framed.extend_from_slice(&sink.data);
    framed.extend_from_slice(&0u64.to_le_bytes());
    assert!(framed == export, "ExportPath data differs from nix-store --export");

    // Delete the path, then import it again: the daemon pulls the export from us.
    env.local_nix_store(&["--delete", &path]).await;
    assert!(!Path::new(&path).exists());
    let mut req = BytesMut::new();
    put_u64(&mut req, OP_IMPORT_PATHS);
    w.write_all(&req).await.unwrap();
    let mut source = &export[..];
    let mut sink = LogCollector::new(1 << 20);
    timeout(LIMIT, process_stderr(&mut r, &mut w, &ctx, &mut sink, Some(&mut source))).await.unwrap().unwrap();
    assert_eq!(read_string_list(&mut r, 10, 1 << 10).await.unwrap(), [path.clone()]);
    assert_eq!(std::fs::read(&path).unwrap(), contents);

    // A path outside the store: the daemon fails the request with a structured error.
    let mut req = BytesMut::new();
    put_u64(&mut req, OP_IS_VALID_PATH);
    put_str(&mut req, "/not-a-store/x");
    w.write_all(&req).await.unwrap();
    let mut sink = LogCollector::new(1 << 20);
    let err = timeout(LIMIT, process_stderr(&mut r, &mut w, &ctx, &mut sink, None)).await.unwrap().unwrap_err();
    match err {
        ProtocolError::Remote { message, status } => {
            assert!(message.contains("/not-a-store/x") && message.contains("not in the Nix store"), "{message}");
            assert_eq!(status, 1);
        }
        other => panic!("{other:?}"),
    }
    daemon.kill().await.unwrap();
}
