//! [`ClientConnection`]: the client's side of a worker-protocol connection, one method per
//! operation (in `query`, `add`, `build` and `gc`).

mod add;
mod build;
mod gc;
mod query;
mod upload;

use std::path::Path;

use bytes::BytesMut;
use nix_formats::store_path::StoreDir;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use self::upload::{SourceReader, Upload, UploadError};
use super::ClientConfig;
use crate::error::ProtocolError;
use crate::framed::FramedWriter;
use crate::handshake::{client_handshake, ClientHandshake};
use crate::logger::{process_stderr, LogMessage, LogSink};
use crate::ops::{ClientOptions, Content, Opcode, Payload, Request, Response};
use crate::ser::WireCtx;
use crate::types::TrustedFlag;
use crate::version::ProtocolVersion;
use crate::wire::WireReader;

/// A [`LogSink`] that drops every log message (and refuses `STDERR_WRITE` data, as Nix's
/// clients do when they expect none).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardLogs;

impl LogSink for DiscardLogs {
    async fn log(&mut self, message: LogMessage) -> Result<(), ProtocolError> {
        drop(message);
        Ok(())
    }
}

/// A client connection over a Unix socket.
pub type UnixClientConnection<K = DiscardLogs> = ClientConnection<OwnedReadHalf, OwnedWriteHalf, K>;

/// The client's side of one connection to a daemon, after the handshake. See [the module
/// documentation](super).
///
/// Log messages the daemon sends while it works go to the sink `K` ([`Self::with_sink`]).
/// Every method fails with [`ProtocolError::Remote`] when the daemon reports an error (the
/// connection stays usable), with [`ProtocolError::Unrepresentable`] for what the negotiated
/// version cannot express (nothing is sent then), and with [`ProtocolError::Source`] or
/// [`ProtocolError::BadNar`] when data to be sent cannot be read or is not a valid NAR. Any other
/// error, or a call abandoned half-way, leaves the connection out of step: later calls fail with
/// [`ProtocolError::ConnectionBroken`].
#[derive(Debug)]
pub struct ClientConnection<R, W, K = DiscardLogs> {
    reader: WireReader<R>,
    writer: W,
    ctx: WireCtx,
    handshake: ClientHandshake,
    nar_limits: nix_formats::nar::Limits,
    sink: K,
    /// Set while an operation is under way and after errors that leave the connection out of step.
    broken: bool,
}

impl ClientConnection<OwnedReadHalf, OwnedWriteHalf> {
    /// Connects to the daemon socket at `path` and does the handshake.
    pub async fn connect_unix(path: impl AsRef<Path>, cfg: &ClientConfig) -> Result<Self, ProtocolError> {
        let stream = UnixStream::connect(path).await?;
        let (reader, writer) = stream.into_split();
        Self::handshake(reader, writer, cfg).await
    }
}

impl<S> ClientConnection<ReadHalf<S>, WriteHalf<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Does the client handshake on `stream` and splits it into a connection.
    pub async fn from_stream(mut stream: S, cfg: &ClientConfig) -> Result<Self, ProtocolError> {
        let handshake = client_handshake(&mut stream, &cfg.worker).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok(Self::from_parts(reader, writer, handshake, cfg))
    }
}

impl<R, W> ClientConnection<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Does the client handshake over a separate reader and writer (the halves of a socket).
    pub async fn handshake(reader: R, writer: W, cfg: &ClientConfig) -> Result<Self, ProtocolError> {
        let mut joined = tokio::io::join(reader, writer);
        let handshake = client_handshake(&mut joined, &cfg.worker).await?;
        let (reader, writer) = joined.into_inner();
        Ok(Self::from_parts(reader, writer, handshake, cfg))
    }

    /// A connection whose handshake has been done already (by [`client_handshake`]).
    pub fn from_parts(reader: R, writer: W, handshake: ClientHandshake, cfg: &ClientConfig) -> Self {
        let ctx = WireCtx::worker(handshake.negotiated.version)
            .with_store_dir(cfg.store_dir.clone())
            .with_limits(cfg.worker.limits);
        Self {
            reader: WireReader::new(reader),
            writer,
            ctx,
            handshake,
            nar_limits: cfg.nar_limits,
            sink: DiscardLogs,
            broken: false,
        }
    }
}

impl<R, W, K> ClientConnection<R, W, K> {
    /// The same connection with log messages going to `sink`.
    pub fn with_sink<K2: LogSink>(self, sink: K2) -> ClientConnection<R, W, K2> {
        ClientConnection {
            reader: self.reader,
            writer: self.writer,
            ctx: self.ctx,
            handshake: self.handshake,
            nar_limits: self.nar_limits,
            sink,
            broken: self.broken,
        }
    }

    /// The log sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The log sink, mutably (to take what it collected).
    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.ctx.version
    }

    /// The daemon's Nix version, if it sent one (from 1.33).
    pub fn daemon_nix_version(&self) -> Option<&str> {
        self.handshake.info.daemon_nix_version.as_deref()
    }

    /// Whether the daemon trusts this client, if it said (from 1.35).
    pub fn remote_trusts_us(&self) -> Option<TrustedFlag> {
        self.handshake.info.remote_trusts_us
    }

    /// What the handshake agreed on, with the daemon's startup messages.
    pub fn handshake_info(&self) -> &ClientHandshake {
        &self.handshake
    }

    /// The context values are encoded and decoded at (version, store directory, limits).
    pub fn ctx(&self) -> &WireCtx {
        &self.ctx
    }

    /// The store directory paths are parsed against.
    pub fn store_dir(&self) -> &StoreDir {
        &self.ctx.store_dir
    }

    /// Whether an earlier error left the connection out of step.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Fails with [`ProtocolError::Unrepresentable`] below version `1.minor`.
    fn require(&self, minor: u8, what: &str) -> Result<(), ProtocolError> {
        if self.ctx.version.at_least(1, minor) {
            return Ok(());
        }
        Err(ProtocolError::Unrepresentable { what: what.to_owned(), version: self.ctx.version })
    }
}

/// The error for a reply that does not belong to the request (impossible with replies decoded
/// for the request's opcode, but typed rather than a panic).
fn mismatch(request: Opcode, response: &Response) -> ProtocolError {
    ProtocolError::ResponseMismatch { request, response: response.opcode() }
}

/// Takes the reply apart: `reply!(self.call(req), Response::X(v) => v)`.
macro_rules! reply {
    ($call:expr, $pat:pat => $value:expr) => {{
        match $call.await? {
            $pat => Ok($value),
            other => Err($crate::connection::client::mismatch(other.opcode(), &other)),
        }
    }};
}
pub(crate) use reply;

impl<R, W, K> ClientConnection<R, W, K>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: LogSink,
{
    /// Sends `SetOptions` (Nix's clients send it first on every connection).
    pub async fn set_options(&mut self, options: &ClientOptions) -> Result<(), ProtocolError> {
        reply!(self.call(Request::SetOptions(options.clone())), Response::SetOptions => ())
    }

    /// Sends any request, with its payload (if it has one) read from `payload` and sent in the
    /// form [`Request::payload`] gives for the negotiated version, and returns the daemon's typed
    /// reply: the generic form of the other methods, for proxies. The request must be in the
    /// version's form (`AddToStore`'s changes at 1.25). `NarFromPath` and `ExportPath`, whose
    /// replies carry data, are refused with [`ProtocolError::OutOfTurn`] (see
    /// [`Self::nar_from_path`], [`Self::export_path`]), as is a payload-bearing request without
    /// `payload`.
    pub async fn request(
        &mut self,
        request: Request,
        payload: Option<&mut (dyn AsyncRead + Unpin + Send)>,
    ) -> Result<Response, ProtocolError> {
        if request.opcode().reply_data() != crate::ops::ReplyData::None {
            return Err(ProtocolError::OutOfTurn("replies that carry data need their own methods"));
        }
        let kind = request.payload(self.ctx.version);
        if kind == Payload::None {
            return self.call(request).await;
        }
        let source = payload.ok_or(ProtocolError::OutOfTurn("this request needs a payload"))?;
        match kind {
            Payload::Framed(Content::Nar) => self.call_framed(request, Upload::Nar(source)).await,
            Payload::Framed(_) => self.call_framed(request, Upload::Raw(source)).await,
            Payload::InlineNar => self.call_inline(request, Upload::Nar(source)).await,
            Payload::StderrReadPulled(_) | Payload::None => self.call_pulled(request, source).await,
        }
    }

    /// Writes the request (nothing is sent if it cannot be encoded) and marks the operation as
    /// under way.
    async fn begin(&mut self, request: &Request) -> Result<(), ProtocolError> {
        if self.broken {
            return Err(ProtocolError::ConnectionBroken);
        }
        let mut out = BytesMut::new();
        request.encode(&mut out, &self.ctx)?;
        self.broken = true;
        self.writer.write_all(&out).await.map_err(ProtocolError::from_io)
    }

    /// Handles the daemon's log messages up to `STDERR_LAST`, answering `STDERR_READ` from
    /// `source`. A daemon error ends the operation cleanly.
    async fn logs(&mut self, source: Option<&mut (dyn AsyncRead + Unpin + Send)>) -> Result<(), ProtocolError> {
        let result = process_stderr(&mut self.reader, &mut self.writer, &self.ctx, &mut self.sink, source).await;
        if let Err(ProtocolError::Remote { .. }) = result {
            self.broken = false;
        }
        result
    }

    /// Reads the reply to `op` and ends the operation.
    async fn reply(&mut self, op: Opcode) -> Result<Response, ProtocolError> {
        let response = Response::read(op, &mut self.reader, &self.ctx).await?;
        self.broken = false;
        Ok(response)
    }

    /// An operation without payload: request, log messages, reply.
    async fn call(&mut self, request: Request) -> Result<Response, ProtocolError> {
        let op = request.opcode();
        self.begin(&request).await?;
        self.logs(None).await?;
        self.reply(op).await
    }

    /// An operation whose payload follows the request raw (a NAR, before 1.25 or 1.21).
    async fn call_inline(&mut self, request: Request, upload: Upload<'_>) -> Result<Response, ProtocolError> {
        let op = request.opcode();
        self.begin(&request).await?;
        upload.write_to(&mut self.writer, &self.ctx, self.nar_limits).await.map_err(UploadError::into_error)?;
        self.logs(None).await?;
        self.reply(op).await
    }

    /// An operation whose payload the daemon pulls with `STDERR_READ` (1.21 and 1.22).
    async fn call_pulled(
        &mut self,
        request: Request,
        source: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<Response, ProtocolError> {
        let op = request.opcode();
        self.begin(&request).await?;
        let mut source = SourceReader::new(source);
        self.logs(Some(&mut source)).await?;
        self.reply(op).await
    }

    /// An operation whose payload is a framed stream: the stream is sent while the daemon's log
    /// messages are read, so neither side waits on the other.
    async fn call_framed(&mut self, request: Request, upload: Upload<'_>) -> Result<Response, ProtocolError> {
        let op = request.opcode();
        self.begin(&request).await?;
        self.writer.flush().await.map_err(ProtocolError::from_io)?;
        let Self { reader, writer, ctx, sink, nar_limits, .. } = self;
        let send = async {
            let mut framed = FramedWriter::new(&mut *writer);
            match upload.write_to(&mut framed, ctx, *nar_limits).await {
                Ok(()) => framed.finish().await.map(drop).map_err(UploadError::Connection),
                Err(UploadError::Local(e)) => {
                    // End the stream early: the daemon sees a short payload and reports it.
                    framed.abort().await.map_err(UploadError::Connection)?;
                    Err(UploadError::Local(e))
                }
                Err(e) => Err(e),
            }
        };
        // No `STDERR_READ` is answered here, so the log reader needs no writer of its own.
        let mut no_writer = tokio::io::sink();
        let logs = process_stderr(&mut *reader, &mut no_writer, ctx, sink, None);
        let (sent, logged) = tokio::join!(send, logs);
        match (sent, logged) {
            (Ok(()), Ok(())) => self.reply(op).await,
            (Ok(()), Err(remote @ ProtocolError::Remote { .. })) => {
                self.broken = false;
                Err(remote)
            }
            (Err(UploadError::Local(local)), Err(ProtocolError::Remote { .. })) => {
                // The daemon refused the short stream; the local cause says more.
                self.broken = false;
                Err(local)
            }
            (Err(UploadError::Local(local)), Ok(())) => {
                // The daemon took the short stream: read its reply to stay in step, then fail.
                self.reply(op).await?;
                Err(local)
            }
            (Err(UploadError::Connection(_)), Err(remote @ ProtocolError::Remote { .. })) => Err(remote),
            (Err(UploadError::Connection(e)), _) | (_, Err(e)) => Err(e),
        }
    }
}
