//! A client and a table-driven server over an in-memory duplex stream, for the connection tests.

#![allow(dead_code)] // each test file uses a part

use std::pin::Pin;
use std::task::{Context, Poll};

use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use worker_protocol::connection::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use worker_protocol::handshake::WorkerConfig;
use worker_protocol::logger::{ActivityId, ActivityType, RemoteError, Verbosity};
use worker_protocol::ops::payload::decode_multiple_item_info;
use worker_protocol::ops::{Request, Response};
use worker_protocol::types::{ClientHandshakeInfo, TrustedFlag};
use worker_protocol::wire::Decoder;
use worker_protocol::{ProtocolVersion, WireCtx};

/// The client type of these tests.
pub type Client<K = worker_protocol::connection::DiscardLogs> =
    ClientConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>, K>;

/// A store path `<digits>-name`, with a hash part made from the name.
pub fn sp(name: &str) -> StorePath {
    let n = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    StorePath::from_base_name(&format!("{:0>32}-{name}", n % 10u64.pow(18))).unwrap()
}

/// The NAR of one regular file.
pub fn nar_of(contents: &[u8]) -> Vec<u8> {
    let mut w = nix_formats::nar::Writer::new(Vec::new());
    w.regular_bytes(false, contents).unwrap();
    w.finish().unwrap()
}

/// A path info for `sp(name)` with `nar`'s hash and size, a deriver, a signature, a time.
pub fn sample_info(name: &str, nar: &[u8]) -> ValidPathInfo {
    let mut info = ValidPathInfo::new(sp(name), Hash::of(Algorithm::Sha256, nar));
    info.nar_size = nar.len() as u64;
    info.deriver = Some(sp(&format!("{name}.drv")));
    info.registration_time = 1_700_000_000;
    info.sigs.insert("cache:c2lnbmF0dXJl".into());
    info
}

/// How the test server answers a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Read the payload, then reply.
    Reply(Response),
    /// Read the payload, then send this NAR (`NarFromPath`).
    Nar(Vec<u8>),
    /// Send this data in `STDERR_WRITE` messages, then reply (`ExportPath`).
    Export(Vec<u8>),
    /// Read the payload, then fail with this message.
    Error(String),
    /// Fail at once with this message, without reading the payload.
    ErrorUnread(String),
    /// Log two lines and an activity, then reply.
    LogThen(Response),
    /// Never answer.
    Stall,
}

/// A table entry that replies.
pub fn answer(request: impl Into<Request>, response: Response) -> (Request, Answer) {
    (request.into(), Answer::Reply(response))
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: Request,
    pub payload: Vec<u8>,
}

type Server = ServerConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

/// Whether a NAR payload is acceptable for `request` (`AddToStoreNar`: the hash must match).
fn check_payload(request: &Request, payload: &[u8]) -> Result<(), String> {
    if let Request::AddToStoreNar(r) = request {
        if Hash::of(Algorithm::Sha256, payload) != r.info.nar_hash {
            return Err("hash mismatch importing path".into());
        }
    }
    Ok(())
}

async fn serve(mut conn: Server, table: Vec<(Request, Answer)>) -> Vec<Seen> {
    let mut seen = Vec::new();
    while let Some(request) = conn.next_request().await.unwrap() {
        let found = table.iter().find(|(r, _)| *r == request).map(|(_, a)| a.clone());
        let Some(answer) = found else {
            conn.fail(&RemoteError::new(format!("unexpected request {request:?}"))).await.unwrap();
            seen.push(Seen { request, payload: Vec::new() });
            continue;
        };
        let mut payload = Vec::new();
        if !matches!(answer, Answer::ErrorUnread(_) | Answer::Stall) {
            conn.payload().unwrap().read_to_end(&mut payload).await.unwrap();
            if let Err(message) = check_payload(&request, &payload) {
                conn.fail(&RemoteError::new(message)).await.unwrap();
                seen.push(Seen { request, payload });
                continue;
            }
        }
        match answer {
            Answer::Reply(response) => conn.respond(&response).await.unwrap(),
            Answer::Nar(nar) => {
                let w = conn.nar_reply().await.unwrap();
                w.write_all(&nar).await.unwrap();
                w.flush().await.unwrap();
            }
            Answer::Export(data) => {
                let mut w = conn.export_writer().unwrap();
                w.write_all(&data).await.unwrap();
                w.flush().await.unwrap();
                conn.respond(&Response::ExportPath).await.unwrap();
            }
            Answer::Error(message) | Answer::ErrorUnread(message) => conn.fail(&RemoteError::new(message)).await.unwrap(),
            Answer::LogThen(response) => {
                let logger = conn.logger();
                logger.log(Verbosity::Info, "checking a").await.unwrap();
                logger.log(Verbosity::Debug, "filtered out").await.unwrap();
                let id = logger.start_activity(Verbosity::Info, ActivityType::Build, "act", vec![], ActivityId::NONE).await.unwrap();
                logger.stop_activity(id).await.unwrap();
                logger.log(Verbosity::Info, "done").await.unwrap();
                conn.respond(&response).await.unwrap();
            }
            Answer::Stall => std::future::pending::<()>().await,
        }
        seen.push(Seen { request, payload });
    }
    seen
}

/// A connected client at `version` and a server task answering from `table`.
pub async fn start(version: ProtocolVersion, table: Vec<(Request, Answer)>) -> (Client, JoinHandle<Vec<Seen>>) {
    let (client_end, server_end) = tokio::io::duplex(64 << 10);
    let server_cfg = ServerConfig {
        worker: WorkerConfig { min_version: ProtocolVersion::new(1, 10), ..WorkerConfig::default() },
        info: ClientHandshakeInfo { daemon_nix_version: Some("test".into()), remote_trusts_us: Some(TrustedFlag::Trusted) },
        ..ServerConfig::default()
    };
    let server = tokio::spawn(async move {
        let conn = ServerConnection::accept(server_end, &server_cfg).await.unwrap();
        serve(conn, table).await
    });
    let client_cfg = ClientConfig {
        worker: WorkerConfig { version, min_version: ProtocolVersion::new(1, 10), ..WorkerConfig::default() },
        ..ClientConfig::default()
    };
    let client = ClientConnection::from_stream(client_end, &client_cfg).await.unwrap();
    assert_eq!(client.version(), version);
    (client, server)
}

/// Closes the client and returns what the server saw.
pub async fn finish<K>(client: Client<K>, server: JoinHandle<Vec<Seen>>) -> Vec<Seen> {
    drop(client);
    server.await.unwrap()
}

/// Splits an `AddMultipleToStore` stream into its infos and NARs.
pub fn decode_multiple(mut bytes: &[u8]) -> Vec<(ValidPathInfo, Vec<u8>)> {
    let ctx = WireCtx::default();
    let (count, rest) = bytes.split_at(8);
    bytes = rest;
    (0..u64::from_le_bytes(count.try_into().unwrap()))
        .map(|_| {
            let mut d = Decoder::new(bytes, ctx.limits);
            let info = decode_multiple_item_info(&mut d, &ctx).unwrap();
            bytes = &bytes[d.position()..];
            let mut reader = nix_formats::nar::Reader::new(bytes, nix_formats::nar::Limits::default());
            while reader.next().unwrap().is_some() {}
            let len = reader.position() as usize;
            let nar = bytes[..len].to_vec();
            bytes = &bytes[len..];
            (info, nar)
        })
        .collect()
}

/// Gives `data` up to `fail_at`, then fails.
pub struct FailingReader {
    pub data: Vec<u8>,
    pub pos: usize,
    pub fail_at: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos >= this.fail_at {
            return Poll::Ready(Err(std::io::Error::other("disk on fire")));
        }
        let n = (this.fail_at - this.pos).min(out.remaining()).min(this.data.len() - this.pos);
        out.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}
