//! The hostile client and the runner that puts it in front of the server: how the bytes travel
//! ([`Transport`], [`Delivery`]), how the client leaves ([`Ending`]), and the measurements of one
//! run (time, bytes allocated).

use std::time::{Duration, Instant};

use stats_alloc::{Region, StatsAlloc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use worker_protocol::handshake::{client_handshake, WorkerConfig};
use worker_protocol::{Limits, ProtocolVersion};

use super::server::{serve, Outcome};

/// The connection between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// An in-memory `tokio::io::duplex` pipe (64 KiB each way).
    Duplex,
    /// A pair of connected Unix stream sockets: real end-of-file and reset behaviour.
    UnixSocketPair,
}

/// Where the hostile bytes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the very first byte: the bytes are the handshake.
    Raw,
    /// After a correct client handshake offering `1.minor`.
    AfterHandshake(u8),
}

/// How the bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In one write.
    Whole,
    /// In writes of this many bytes, each flushed, yielding to the server in between, so that
    /// every read on the server side sees at most this many new bytes.
    Trickle(usize),
}

/// What the client does after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Shuts down its writing half (the server reads end-of-file) and reads whatever the
    /// server still sends until the server closes.
    HalfClose,
    /// Drops the connection at once: a disconnect in the middle of whatever it was sending.
    Disconnect,
    /// Keeps the connection open, sending nothing more, until the server closes it.
    HoldOpen,
}

/// Everything the client does in one case.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where the bytes start.
    pub start: Start,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// How they are written.
    pub delivery: Delivery,
    /// What happens afterwards.
    pub ending: Ending,
    /// The server's limits.
    pub limits: Limits,
}

/// Anything the client and the server can talk over.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn pair(transport: Transport) -> (Box<dyn Stream>, Box<dyn Stream>) {
    match transport {
        Transport::Duplex => {
            let (client, server) = tokio::io::duplex(64 << 10);
            (Box::new(client), Box::new(server))
        }
        Transport::UnixSocketPair => {
            let (client, server) = tokio::net::UnixStream::pair().expect("socket pair");
            (Box::new(client), Box::new(server))
        }
    }
}

/// Reads and discards what the server sends until it closes (or fails).
async fn drain(stream: &mut (impl AsyncRead + Unpin)) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn run_client(mut stream: Box<dyn Stream>, script: Script) {
    if let Start::AfterHandshake(minor) = script.start {
        let cfg = WorkerConfig { version: ProtocolVersion::new(1, minor), ..WorkerConfig::default() };
        client_handshake(&mut stream, &cfg).await.expect("the correct client handshake succeeds");
    }
    // Write errors are expected: the server stops reading (and closes) at the first error.
    let chunk = match script.delivery {
        Delivery::Whole => script.bytes.len().max(1),
        Delivery::Trickle(n) => n.max(1),
    };
    for piece in script.bytes.chunks(chunk) {
        if stream.write_all(piece).await.is_err() || stream.flush().await.is_err() {
            break;
        }
        if chunk < script.bytes.len() {
            tokio::task::yield_now().await;
        }
    }
    match script.ending {
        Ending::HalfClose => {
            let _ = stream.shutdown().await;
            drain(&mut stream).await;
        }
        Ending::Disconnect => drop(stream),
        Ending::HoldOpen => drain(&mut stream).await,
    }
}

/// The hard bound on one case: if the server has not finished by then, it hung.
pub const CASE_LIMIT: Duration = Duration::from_secs(2);

/// One run of a case: what the server made of it, how long it took, and how many bytes were
/// allocated meanwhile (in all threads; the caller makes sure nothing else runs).
#[derive(Debug)]
pub struct Run {
    /// The server's outcome.
    pub outcome: Outcome,
    /// From connecting to the server's end.
    pub elapsed: Duration,
    /// Every byte allocated during the run (realloc growth included), freed or not: an upper
    /// bound on how much the live heap grew at its peak.
    pub allocated: usize,
}

/// Runs `script` against the server over `transport`, on a fresh single-threaded runtime, and
/// measures it. Panics if the server does not finish within [`CASE_LIMIT`].
pub fn run(name: &str, script: &Script, transport: Transport, allocator: &'static StatsAlloc<std::alloc::System>) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let region = Region::new(allocator);
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let (client, server) = pair(transport);
        let client = tokio::spawn(run_client(client, script.clone()));
        let outcome = tokio::time::timeout(CASE_LIMIT, serve(server, script.limits))
            .await
            .unwrap_or_else(|_| panic!("{name} over {transport:?}: the server hung for {CASE_LIMIT:?}"));
        // The server has dropped its end, so the client's reads and writes end too.
        tokio::time::timeout(CASE_LIMIT, client)
            .await
            .unwrap_or_else(|_| panic!("{name} over {transport:?}: the client did not finish"))
            .unwrap_or_else(|e| panic!("{name} over {transport:?}: the client failed: {e}"));
        outcome
    });
    let elapsed = started.elapsed();
    let allocated = region.change().bytes_allocated;
    drop(runtime);
    Run { outcome, elapsed, allocated }
}
