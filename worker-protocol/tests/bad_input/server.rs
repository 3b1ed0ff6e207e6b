//! The server side under test: a daemon's reading loop built from the crate's parts, as a
//! connection type would build it. It runs the server handshake, then reads opcode after opcode
//! with a [`WireReader`], decodes each request with [`Request::read`] and drains the framed
//! payload of the requests that carry one through a [`FramedReader`]. It sends no replies: only
//! reading is under test.
//!
//! The one thing the crate leaves to the connection is the idle bound: [`Idle`] fails a read
//! that waits longer than [`IDLE_LIMIT`] for a byte, so a client that says nothing ends with a
//! typed error (`ProtocolError::Io` of kind `TimedOut`) and not a hang.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use worker_protocol::framed::FramedReader;
use worker_protocol::handshake::{server_handshake, WorkerConfig};
use worker_protocol::ops::{Opcode, Payload, Request};
use worker_protocol::types::{ClientHandshakeInfo, TrustedFlag};
use worker_protocol::wire::WireReader;
use worker_protocol::{Limits, ProtocolError, WireCtx};

/// How long the server waits for the next byte before it gives up on the client.
pub const IDLE_LIMIT: Duration = Duration::from_millis(300);

/// Wraps a stream so that a read that waits longer than a limit for data fails with
/// [`io::ErrorKind::TimedOut`]. The clock starts when a read first has to wait and stops when
/// it completes, so time the server spends on its own work never counts.
pub struct Idle<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
}

impl<S> Idle<S> {
    /// `inner` with reads bounded by `limit` of silence each.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit, timer: Box::pin(tokio::time::sleep(limit)), waiting: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.waiting = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.limit;
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client sent nothing for {:?}", this.limit),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What the server made of a connection.
#[derive(Debug)]
pub struct Outcome {
    /// The requests decoded completely (with their payloads) before the end.
    pub requests: Vec<Request>,
    /// The payload bytes read from framed streams.
    pub payload_bytes: u64,
    /// How it ended: `Ok` when the client closed the connection between two requests.
    pub end: Result<(), ProtocolError>,
}

/// Serves one connection until the client closes it or something fails.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, limits: Limits) -> Outcome {
    let mut outcome = Outcome { requests: Vec::new(), payload_bytes: 0, end: Ok(()) };
    outcome.end = serve_until_end(Idle::new(stream, IDLE_LIMIT), limits, &mut outcome).await;
    outcome
}

async fn serve_until_end<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    limits: Limits,
    outcome: &mut Outcome,
) -> Result<(), ProtocolError> {
    let cfg = WorkerConfig { limits, ..WorkerConfig::default() };
    let info = ClientHandshakeInfo {
        daemon_nix_version: Some("casnix-bad-input".into()),
        remote_trusts_us: Some(TrustedFlag::NotTrusted),
    };
    let handshake = server_handshake(&mut stream, &cfg, &info, &[]).await?;
    let ctx = WireCtx::worker(handshake.negotiated.version).with_limits(limits);
    let mut reader = WireReader::new(stream);
    loop {
        let code = match reader.read_value::<u64>(&ctx).await {
            // The end of the stream before the first byte of an opcode is a clean close.
            Err(ProtocolError::UnexpectedEof) if reader.buffered().is_empty() => return Ok(()),
            other => other?,
        };
        let op = Opcode::from_u64(code)?;
        let request = Request::read(op, &mut reader, &ctx).await?;
        match request.payload(ctx.version) {
            Payload::None => {}
            Payload::Framed(_) => {
                let mut framed = FramedReader::new(&mut reader, limits.max_frame_len);
                let copied = tokio::io::copy(&mut framed, &mut tokio::io::sink()).await;
                outcome.payload_bytes += copied.map_err(ProtocolError::from_io)?;
            }
            other => panic!("the corpus sends no request with a {other:?} payload ({op})"),
        }
        outcome.requests.push(request);
    }
}
