//! A fake Nix daemon for tests against real Nix clients: it does the server handshake, decodes
//! each request with `worker_protocol::ops`, reads its framed payload, records both, and answers
//! `STDERR_LAST` plus the reply a test-supplied function chooses.

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use nix_formats::store_path::{StoreDir, StorePath};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Command;
use worker_protocol::framed::FramedReader;
use worker_protocol::handshake::{server_handshake, WorkerConfig};
use worker_protocol::ops::{Opcode, Payload, Request, Response};
use worker_protocol::stderr::{STDERR_ERROR, STDERR_LAST};
use worker_protocol::types::{ClientHandshakeInfo, TrustedFlag};
use worker_protocol::wire::encoder::{put_str, put_u64};
use worker_protocol::wire::WireReader;
use worker_protocol::{ProtocolError, ProtocolVersion, WireCtx};

/// How long a client command may take.
pub const LIMIT: Duration = Duration::from_secs(60);

/// One request as the fake daemon decoded it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The negotiated version of its connection.
    pub version: ProtocolVersion,
    /// The decoded request.
    pub request: Request,
    /// The bytes of its framed payload, if it had one.
    pub payload: Vec<u8>,
}

/// What the fake daemon answers.
pub enum Reply {
    /// `STDERR_LAST` and this reply.
    Typed(Response),
    /// `STDERR_LAST` and these raw bytes (the NAR of `NarFromPath`).
    Raw(Vec<u8>),
    /// `STDERR_ERROR` with this message.
    Error(String),
}

/// Chooses the reply to a request (given its payload).
pub type Responder = Arc<dyn Fn(&Request, &[u8]) -> Reply + Send + Sync>;

/// Answers `SetOptions` and refuses everything else with an error the client shows.
pub fn only_set_options(request: &Request) -> Reply {
    match request {
        Request::SetOptions(_) => Reply::Typed(Response::SetOptions),
        other => Reply::Error(format!("the test did not expect {}", other.opcode())),
    }
}

/// An isolated environment for a Nix client: store, state, log and config directories, and the
/// socket of the fake daemon.
pub struct ClientEnv {
    pub dir: tempfile::TempDir,
}

impl ClientEnv {
    pub fn new() -> Self {
        // Under /tmp, so that a chroot that binds /tmp sees the same paths.
        let dir = tempfile::Builder::new().prefix("casnix-ops-").tempdir_in("/tmp").unwrap();
        for sub in ["store", "state", "log", "conf", "home"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("conf/nix.conf"),
            "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n",
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("socket")
    }

    pub fn store_dir(&self) -> StoreDir {
        StoreDir::new(self.path("store").to_str().unwrap())
    }

    /// A store path in this environment's store with a fixed hash part.
    pub fn store_path(&self, hash_char: char, name: &str) -> StorePath {
        let hash: String = std::iter::repeat(hash_char).take(32).collect();
        StorePath::from_base_name(&format!("{hash}-{name}")).unwrap()
    }

    /// The printed form of `path`.
    pub fn print(&self, path: &StorePath) -> String {
        self.store_dir().print(path)
    }

    /// The environment variables that point a Nix client at the fake daemon.
    pub fn vars(&self) -> Vec<(String, String)> {
        let p = |s: &str| self.path(s).to_str().unwrap().to_owned();
        vec![
            ("NIX_STORE_DIR".into(), p("store")),
            ("NIX_STATE_DIR".into(), p("state")),
            ("NIX_LOG_DIR".into(), p("log")),
            ("NIX_CONF_DIR".into(), p("conf")),
            ("NIX_REMOTE".into(), format!("unix://{}", p("socket"))),
            ("HOME".into(), p("home")),
        ]
    }

    /// A command of the installed Nix (2.8), talking to the fake daemon.
    pub fn nix(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.vars()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }
}

/// Runs `cmd` (with `stdin` as its input) and returns its output.
pub async fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut input = child.stdin.take().unwrap();
        input.write_all(&data).await.unwrap();
        drop(input);
    }
    tokio::time::timeout(LIMIT, child.wait_with_output()).await.expect("the client finishes").unwrap()
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics with the client's output unless it succeeded.
pub fn check_success(out: &Output) {
    assert!(
        out.status.success(),
        "client failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fake daemon: a listener and the requests of every connection it served.
pub struct FakeDaemon {
    records: Arc<Mutex<Vec<Recorded>>>,
    errors: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    /// Listens on `socket`, decoding paths against `store_dir`, answering with `responder`.
    pub fn start(socket: &Path, store_dir: StoreDir, responder: Responder) -> Self {
        let listener = UnixListener::bind(socket).unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (r, e) = (records.clone(), errors.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (r, e, sd, resp) = (r.clone(), e.clone(), store_dir.clone(), responder.clone());
                tokio::spawn(async move {
                    if let Err(err) = serve(stream, sd, resp, r).await {
                        e.lock().unwrap().push(err.to_string());
                    }
                });
            }
        });
        Self { records, errors, task }
    }

    /// Every request so far, in arrival order.
    pub fn records(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }

    /// Every request so far except `SetOptions`.
    pub fn requests(&self) -> Vec<Request> {
        self.records().into_iter().map(|r| r.request).filter(|r| !matches!(r, Request::SetOptions(_))).collect()
    }

    /// Stops listening and panics if a connection failed to decode or answer.
    pub fn finish(self) -> Vec<Recorded> {
        self.task.abort();
        let errors = self.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "the fake daemon failed: {errors:?}");
        self.records()
    }
}

fn error_message(out: &mut BytesMut, version: ProtocolVersion, msg: &str) {
    put_u64(out, STDERR_ERROR);
    if version.at_least(1, 26) {
        put_str(out, "Error");
        put_u64(out, 0); // level: error
        put_str(out, "Error");
        put_str(out, msg);
        put_u64(out, 0); // no position
        put_u64(out, 0); // no traces
    } else {
        put_str(out, msg);
        put_u64(out, 1);
    }
}

async fn serve(
    mut stream: UnixStream,
    store_dir: StoreDir,
    responder: Responder,
    records: Arc<Mutex<Vec<Recorded>>>,
) -> Result<(), ProtocolError> {
    let info = ClientHandshakeInfo {
        daemon_nix_version: Some("casnix-test".into()),
        remote_trusts_us: Some(TrustedFlag::Trusted),
    };
    let hs = server_handshake(&mut stream, &WorkerConfig::default(), &info, &[]).await?;
    let version = hs.negotiated.version;
    let ctx = WireCtx::worker(version).with_store_dir(store_dir);
    let (rd, mut wr) = stream.into_split();
    let mut r = WireReader::new(rd);
    loop {
        let code = match r.read_value::<u64>(&ctx).await {
            Ok(code) => code,
            Err(ProtocolError::UnexpectedEof) if r.buffered().is_empty() => return Ok(()),
            Err(e) => return Err(e),
        };
        let op = Opcode::from_u64(code)?;
        let request = Request::read(op, &mut r, &ctx).await?;
        let mut payload = Vec::new();
        match request.payload(version) {
            Payload::None => {}
            Payload::Framed(_) => {
                let mut framed = FramedReader::new(&mut r, ctx.limits.max_frame_len);
                framed.read_to_end(&mut payload).await.map_err(ProtocolError::from_io)?;
            }
            other => panic!("the fake daemon cannot read {other:?}"),
        }
        let reply = responder(&request, &payload);
        records.lock().unwrap().push(Recorded { version, request, payload });
        let mut out = BytesMut::new();
        match reply {
            Reply::Typed(response) => {
                assert_eq!(response.opcode(), op, "a reply to the wrong operation");
                put_u64(&mut out, STDERR_LAST);
                response.encode(&mut out, &ctx)?;
            }
            Reply::Raw(bytes) => {
                put_u64(&mut out, STDERR_LAST);
                out.extend_from_slice(&bytes);
            }
            Reply::Error(msg) => error_message(&mut out, version, &msg),
        }
        wr.write_all(&out).await.map_err(ProtocolError::from_io)?;
        wr.flush().await.map_err(ProtocolError::from_io)?;
    }
}
