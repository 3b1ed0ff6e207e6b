//! [`ServerConnection`]: the daemon's side of a worker-protocol connection.

mod export;
mod input;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};

pub use export::ExportWriter;
pub use input::PayloadReader;

use self::input::Input;
use super::ServerConfig;
use crate::error::ProtocolError;
use crate::handshake::{server_handshake, ServerHandshake};
use crate::logger::{RemoteError, ServerLogger, Verbosity};
use crate::ops::{Opcode, Payload, ReplyData, Request, Response};
use crate::ser::WireCtx;
use crate::version::ProtocolVersion;
use crate::wire::WireReader;

/// The request being served.
#[derive(Debug, Clone, Copy)]
struct Current {
    op: Opcode,
    payload: Payload,
}

/// The daemon's side of one connection, after the handshake. See [the module
/// documentation](super).
///
/// One request is served at a time: [`Self::next_request`] reads it (and starts the logger's
/// work, so log messages go out at once), then exactly one of [`Self::respond`], [`Self::fail`],
/// [`Self::nar_reply`] ends it. Errors that leave the connection out of step (the client sent
/// something unreadable, or an unknown operation) are answered with `STDERR_ERROR` where Nix
/// answers them, returned, and make every later call fail with
/// [`ProtocolError::ConnectionBroken`]: the caller should close the connection then.
#[derive(Debug)]
pub struct ServerConnection<R, W> {
    input: Input<R>,
    logger: ServerLogger<W>,
    ctx: WireCtx,
    handshake: ServerHandshake,
    nar_limits: nix_formats::nar::Limits,
    current: Option<Current>,
}

impl<S> ServerConnection<ReadHalf<S>, WriteHalf<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Does the server handshake on `stream` and splits it into a connection.
    pub async fn accept(mut stream: S, cfg: &ServerConfig) -> Result<Self, ProtocolError> {
        let handshake = server_handshake(&mut stream, &cfg.worker, &cfg.info, &cfg.startup_messages).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok(Self::from_parts(reader, writer, handshake, cfg))
    }
}

impl<R, W> ServerConnection<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Does the server handshake over a separate reader and writer (the halves of a socket).
    pub async fn handshake(reader: R, writer: W, cfg: &ServerConfig) -> Result<Self, ProtocolError> {
        let mut joined = tokio::io::join(reader, writer);
        let handshake = server_handshake(&mut joined, &cfg.worker, &cfg.info, &cfg.startup_messages).await?;
        let (reader, writer) = joined.into_inner();
        Ok(Self::from_parts(reader, writer, handshake, cfg))
    }

    /// A connection whose handshake has been done already (by [`server_handshake`]).
    pub fn from_parts(reader: R, writer: W, handshake: ServerHandshake, cfg: &ServerConfig) -> Self {
        let version = handshake.negotiated.version;
        let ctx = WireCtx::worker(version).with_store_dir(cfg.store_dir.clone()).with_limits(cfg.worker.limits);
        Self {
            input: Input::Idle(WireReader::new(reader)),
            logger: ServerLogger::new(writer, version),
            ctx,
            handshake,
            nar_limits: cfg.nar_limits,
            current: None,
        }
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.ctx.version
    }

    /// The context values are encoded and decoded at.
    pub fn ctx(&self) -> &WireCtx {
        &self.ctx
    }

    /// What the handshake agreed on.
    pub fn handshake_info(&self) -> &ServerHandshake {
        &self.handshake
    }

    /// The operation being served, if any.
    pub fn current_operation(&self) -> Option<Opcode> {
        self.current.map(|c| c.op)
    }

    /// The logger, to send log messages for the request being served (or, between requests, to
    /// hold them back until the next one).
    pub fn logger(&mut self) -> &mut ServerLogger<W> {
        &mut self.logger
    }

    /// Reads the next request: its opcode and fields. Returns `None` when the client has closed
    /// the connection between requests. The logger's work starts (held-back log output is sent),
    /// and a `SetOptions` request sets the logger's verbosity. Payload bytes left from the previous
    /// request are skipped first.
    ///
    /// An unknown or removed operation is answered with Nix's error text (`invalid operation N`,
    /// `Removed operation N`) and returned as [`ProtocolError::UnknownOpcode`] or
    /// [`ProtocolError::RemovedOperation`]; unreadable fields are answered with their error and
    /// returned. Both leave the connection unusable, as Nix closes it then.
    pub async fn next_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        if self.current.is_some() {
            return Err(ProtocolError::OutOfTurn("the previous request has not been answered"));
        }
        self.input.settle().await?;
        let reader = self.input.reader()?;
        let code = match reader.at_eof().await {
            Ok(true) => return Ok(None),
            Ok(false) => reader.read_value::<u64>(&self.ctx).await,
            Err(e) => Err(e),
        };
        let code = match code {
            Ok(code) => code,
            Err(e) => {
                self.input.break_off();
                return Err(e);
            }
        };
        let op = match Opcode::from_u64(code) {
            Ok(op) if !op.is_removed() => op,
            other => {
                self.input.break_off();
                let message = Opcode::refusal_message(code).unwrap_or_else(|| format!("invalid operation {code}"));
                self.logger.error(&RemoteError::new(message)).await?;
                return Err(match other {
                    Ok(_) => ProtocolError::RemovedOperation(code),
                    Err(e) => e,
                });
            }
        };
        let request = match Request::read(op, self.input.reader()?, &self.ctx).await {
            Ok(request) => request,
            Err(e) => {
                self.input.break_off();
                // Nix reports what it could not read, then closes the connection.
                let _ = self.logger.error(&RemoteError::new(e.to_string())).await;
                return Err(e);
            }
        };
        if let Request::SetOptions(options) = &request {
            let verbosity = Verbosity::from_wire(options.verbosity.code().into()).unwrap_or(Verbosity::Vomit);
            self.logger.set_verbosity(verbosity);
        }
        self.logger.start_work().await?;
        let payload = request.payload(self.ctx.version);
        self.input.begin(payload, &self.ctx, self.nar_limits)?;
        self.current = Some(Current { op, payload });
        Ok(Some(request))
    }

    fn current(&self) -> Result<Current, ProtocolError> {
        self.current.ok_or(ProtocolError::OutOfTurn("no request is being served"))
    }

    /// The payload of the request being served, as an `AsyncRead` that ends where the payload
    /// ends (empty for requests without one). Whatever is left unread is skipped before the
    /// reply. A payload pulled with `STDERR_READ` asks the client for data as it is read; calling
    /// this again for such a payload drops what the previous reader had received but not handed
    /// out.
    pub fn payload(&mut self) -> Result<PayloadReader<'_, R, W>, ProtocolError> {
        let current = self.current()?;
        self.input.payload_reader(current.payload, Some(&mut self.logger))
    }

    /// The payload together with the logger, to log while reading it. Not for a payload pulled
    /// with `STDERR_READ`, which needs the logger's writer itself ([`ProtocolError::OutOfTurn`]).
    pub fn payload_with_logger(&mut self) -> Result<(PayloadReader<'_, R, W>, &mut ServerLogger<W>), ProtocolError> {
        let current = self.current()?;
        if matches!(current.payload, Payload::StderrReadPulled(_)) {
            return Err(ProtocolError::OutOfTurn("a payload pulled with STDERR_READ needs the logger's writer"));
        }
        let reader = self.input.payload_reader(current.payload, None)?;
        Ok((reader, &mut self.logger))
    }

    /// Answers the request being served: skips its unread payload, sends `STDERR_LAST` and the
    /// reply. The reply must belong to the request's operation ([`ProtocolError::ResponseMismatch`]),
    /// and `NarFromPath` is answered with [`Self::nar_reply`]. A reply the version cannot carry
    /// fails before anything is sent, and the request stays open (to [`Self::fail`] it).
    pub async fn respond(&mut self, response: &Response) -> Result<(), ProtocolError> {
        let current = self.current()?;
        if response.opcode() != current.op {
            return Err(ProtocolError::ResponseMismatch { request: current.op, response: response.opcode() });
        }
        if current.op.reply_data() == ReplyData::NarAfterLast {
            return Err(ProtocolError::OutOfTurn("NarFromPath is answered with nar_reply"));
        }
        let mut out = BytesMut::new();
        response.encode(&mut out, &self.ctx)?;
        self.current = None;
        self.input.settle().await?;
        self.logger.last_with_reply(&out).await
    }

    /// Ends the request being served with an error (`STDERR_ERROR`). Its unread payload is
    /// skipped first; if that fails (an inline NAR that is malformed, say), the error is still
    /// sent, and the skipping error is returned: the connection is then unusable.
    pub async fn fail(&mut self, error: &RemoteError) -> Result<(), ProtocolError> {
        self.current()?;
        self.current = None;
        let settled = self.input.settle().await;
        self.logger.error(error).await?;
        settled
    }

    /// Answers `NarFromPath`: skips the payload (there is none), sends `STDERR_LAST`, and returns
    /// the writer that the NAR goes to, raw. Write exactly one NAR and flush: the client finds
    /// its end by parsing it.
    pub async fn nar_reply(&mut self) -> Result<&mut W, ProtocolError> {
        let current = self.current()?;
        if current.op.reply_data() != ReplyData::NarAfterLast {
            return Err(ProtocolError::OutOfTurn("only NarFromPath is answered with a NAR"));
        }
        self.current = None;
        self.input.settle().await?;
        self.logger.last().await?;
        Ok(self.logger.get_mut())
    }

    /// For `ExportPath`: a writer that sends what it is given to the client in `STDERR_WRITE`
    /// messages. Flush it, then [`Self::respond`] with [`Response::ExportPath`].
    pub fn export_writer(&mut self) -> Result<ExportWriter<'_, W>, ProtocolError> {
        let current = self.current()?;
        if current.op.reply_data() != ReplyData::StderrWrite {
            return Err(ProtocolError::OutOfTurn("only ExportPath sends data in STDERR_WRITE messages"));
        }
        Ok(ExportWriter::new(self.logger.get_mut()))
    }
}
