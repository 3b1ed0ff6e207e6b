//! [`ServerLogger`]: the daemon's side of the logger channel.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::codes::{STDERR_ERROR, STDERR_LAST, STDERR_WRITE};
use super::message::encode_for;
use super::types::{ActivityId, ActivityType, Field, LogFilter, ResultType, Verbosity};
use super::{LogMessage, PullSource, RemoteError};
use crate::error::ProtocolError;
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_bytes, put_u64};

/// The most bytes of log output held back while no operation runs; more is dropped.
pub const MAX_PENDING: usize = 1 << 20;
/// The most bytes of data sent in one `STDERR_WRITE`; longer data is split.
pub const MAX_WRITE_CHUNK: usize = 64 << 10;

/// Sends logger messages to one client, as Nix's daemon (`TunnelLogger`) does.
///
/// It knows the client's protocol version (activities are turned into plain lines or dropped
/// before 1.20, errors change form at 1.26) and verbosity ([`Self::set_verbosity`], from the
/// client's `SetOptions`; log lines above it are dropped, activities and results are not).
///
/// Like Nix's, it is either idle or inside an operation. Log output produced while idle (between
/// a reply and the next request, when the client expects no message) is held back, up to
/// [`MAX_PENDING`] bytes, and sent by the next [`Self::start_work`]; [`Self::last`] and
/// [`Self::error`] end the operation. Data ([`Self::write_data`], [`Self::pull_source`]) can only
/// be exchanged inside an operation. Every message is flushed as soon as it is written, so the
/// client sees log lines when they happen. A new logger is idle.
#[derive(Debug)]
pub struct ServerLogger<W> {
    writer: W,
    version: ProtocolVersion,
    filter: LogFilter,
    working: bool,
    pending: BytesMut,
    dropped: u64,
}

impl<W: AsyncWrite + Unpin> ServerLogger<W> {
    /// An idle logger for a client of `version` with Nix's default verbosity
    /// ([`Verbosity::Info`]), writing to `writer`.
    pub fn new(writer: W, version: ProtocolVersion) -> Self {
        Self { writer, version, filter: LogFilter::default(), working: false, pending: BytesMut::new(), dropped: 0 }
    }

    /// The client's protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The filter in force.
    pub fn filter(&self) -> LogFilter {
        self.filter
    }

    /// Sets the verbosity the client asked for (in `SetOptions`).
    pub fn set_verbosity(&mut self, verbosity: Verbosity) {
        self.filter = LogFilter::new(verbosity);
    }

    /// Whether an operation is running (between [`Self::start_work`] and [`Self::last`] or
    /// [`Self::error`]).
    pub fn is_working(&self) -> bool {
        self.working
    }

    /// How many messages were dropped because too much log output was held back while idle.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The writer, to write a reply after [`Self::last`]. Writing to it during an operation
    /// puts the connection out of step.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The writer; held-back log output is lost.
    pub fn into_inner(self) -> W {
        self.writer
    }

    async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.writer.write_all(bytes).await.map_err(ProtocolError::from_io)?;
        self.writer.flush().await.map_err(ProtocolError::from_io)
    }

    /// Starts an operation: sends the log output held back since the last one, and flushes.
    pub async fn start_work(&mut self) -> Result<(), ProtocolError> {
        self.working = true;
        let pending = std::mem::take(&mut self.pending);
        self.send_bytes(&pending).await
    }

    /// Sends (or, while idle, holds back) log output, turned into what the client's version
    /// understands by [`super::downgrade`]. Returns whether anything was sent or held back.
    /// Data, data requests and the end of an operation are not log output:
    /// they are [`ProtocolError::UnexpectedMessage`] here (use [`Self::write_data`],
    /// [`Self::pull_source`], [`Self::last`], [`Self::error`]).
    pub async fn forward(&mut self, msg: &LogMessage) -> Result<bool, ProtocolError> {
        if !msg.is_log() {
            return Err(ProtocolError::UnexpectedMessage(msg.code()));
        }
        let Some(bytes) = encode_for(self.version, self.filter, msg) else { return Ok(false) };
        if self.working {
            self.send_bytes(&bytes).await?;
        } else if self.pending.len() + bytes.len() <= MAX_PENDING {
            self.pending.extend_from_slice(&bytes);
        } else {
            self.dropped += 1;
        }
        Ok(true)
    }

    /// Logs `line` at `level`, with a line feed added, if the client's verbosity lets `level`
    /// through (Nix's `TunnelLogger::log`). Returns whether it was sent or held back.
    pub async fn log(&mut self, level: Verbosity, line: impl AsRef<[u8]>) -> Result<bool, ProtocolError> {
        if !self.filter.allows(level) {
            return Ok(false);
        }
        let mut text = Vec::with_capacity(line.as_ref().len() + 1);
        text.extend_from_slice(line.as_ref());
        text.push(b'\n');
        self.forward(&LogMessage::Next(text)).await
    }

    /// Logs text that is already formatted (it gets no line feed; Nix's `logEI`, for errors and
    /// warnings shown with their traces), if the client's verbosity lets `level` through.
    pub async fn log_formatted(&mut self, level: Verbosity, text: impl AsRef<[u8]>) -> Result<bool, ProtocolError> {
        if !self.filter.allows(level) {
            return Ok(false);
        }
        self.forward(&LogMessage::Next(text.as_ref().to_vec())).await
    }

    /// Starts an activity with a new [`ActivityId`] and returns the id. From 1.20 it is sent
    /// whatever its level; before, it becomes the log line `text...` (see [`super::downgrade`]).
    pub async fn start_activity(
        &mut self,
        level: Verbosity,
        kind: ActivityType,
        text: impl Into<Vec<u8>>,
        fields: Vec<Field>,
        parent: ActivityId,
    ) -> Result<ActivityId, ProtocolError> {
        let id = ActivityId::next();
        let msg = LogMessage::StartActivity { id, level, kind, text: text.into(), fields, parent };
        self.forward(&msg).await?;
        Ok(id)
    }

    /// Stops an activity (nothing is sent before 1.20).
    pub async fn stop_activity(&mut self, id: ActivityId) -> Result<(), ProtocolError> {
        self.forward(&LogMessage::StopActivity { id }).await.map(drop)
    }

    /// Reports a result of an activity (nothing is sent before 1.20, not even build output).
    pub async fn result(&mut self, id: ActivityId, kind: ResultType, fields: Vec<Field>) -> Result<(), ProtocolError> {
        self.forward(&LogMessage::Result { id, kind, fields }).await.map(drop)
    }

    /// Sends data to the client's sink (`STDERR_WRITE`), in pieces of at most
    /// [`MAX_WRITE_CHUNK`] bytes. Only inside an operation ([`ProtocolError::LoggerIdle`]
    /// otherwise). Empty data sends nothing.
    pub async fn write_data(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if !self.working {
            return Err(ProtocolError::LoggerIdle("STDERR_WRITE"));
        }
        for piece in data.chunks(MAX_WRITE_CHUNK) {
            let mut out = BytesMut::with_capacity(piece.len() + 24);
            put_u64(&mut out, STDERR_WRITE);
            put_bytes(&mut out, piece);
            self.send_bytes(&out).await?;
        }
        Ok(())
    }

    /// A source that pulls data from the client with `STDERR_READ`, reading the client's
    /// answers from `reader` (the connection's read half). Only inside an operation
    /// ([`ProtocolError::LoggerIdle`] otherwise).
    pub fn pull_source<'a, R>(&'a mut self, reader: &'a mut R) -> Result<PullSource<'a, R, W>, ProtocolError>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        if !self.working {
            return Err(ProtocolError::LoggerIdle("STDERR_READ"));
        }
        Ok(PullSource::new(reader, &mut self.writer))
    }

    /// Ends the operation successfully (`STDERR_LAST`) and flushes; the reply follows, written
    /// to [`Self::get_mut`]. Log output from now on is held back.
    pub async fn last(&mut self) -> Result<(), ProtocolError> {
        self.working = false;
        self.send_bytes(&STDERR_LAST.to_le_bytes()).await
    }

    /// Ends the operation successfully and sends `reply` after `STDERR_LAST` in one write (one
    /// system call for the whole answer), then flushes.
    pub async fn last_with_reply(&mut self, reply: &[u8]) -> Result<(), ProtocolError> {
        self.working = false;
        let mut out = BytesMut::with_capacity(8 + reply.len());
        put_u64(&mut out, STDERR_LAST);
        out.extend_from_slice(reply);
        self.send_bytes(&out).await
    }

    /// Ends the operation with `error` (`STDERR_ERROR`, in the form for the client's version)
    /// and flushes. Allowed while idle too: a request that cannot even be read is answered so.
    pub async fn error(&mut self, error: &RemoteError) -> Result<(), ProtocolError> {
        self.working = false;
        let mut out = BytesMut::new();
        put_u64(&mut out, STDERR_ERROR);
        error.encode(&mut out, self.version);
        self.send_bytes(&out).await
    }
}
