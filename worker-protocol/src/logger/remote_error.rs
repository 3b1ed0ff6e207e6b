//! [`RemoteError`]: the error that follows `STDERR_ERROR`, in both of its forms.

use std::fmt;

use bytes::BytesMut;
use tokio::io::AsyncRead;

use super::read::MessageReader;
use super::types::Verbosity;
use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_bytes, put_str, put_u64};

/// The type name a structured error carries (Nix has only this one).
const ERROR_TYPE: &str = "Error";
/// What a trace line is prefixed with when traces are folded into one message.
const TRACE_SEPARATOR: &str = "\n… ";
/// The exit status of an error that does not say (Nix's default).
pub const DEFAULT_STATUS: u32 = 1;

/// An error reported by the peer (or to be reported to it) with `STDERR_ERROR`.
///
/// On the wire, from worker 1.26: the type name `Error`, the level, a name that is no longer
/// used (also `Error`), the message, a position flag (always 0: positions are not sent) and the
/// traces (each a position flag 0 and a message). There is no exit status in this form; readers
/// take 1. Before 1.26: one message string and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The message, without any `error:` prefix.
    pub message: String,
    /// The exit status the client should end with (sent before 1.26 only).
    pub status: u32,
    /// The error's level (sent from 1.26 only; usually [`Verbosity::Error`]).
    pub level: Verbosity,
    /// The traces, outermost first, as Nix prints them (sent from 1.26 only).
    pub traces: Vec<String>,
}

impl RemoteError {
    /// An error with `message`, exit status 1, level [`Verbosity::Error`] and no traces.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), status: DEFAULT_STATUS, level: Verbosity::Error, traces: Vec::new() }
    }

    /// The same error with exit status `status`.
    pub fn with_status(mut self, status: u32) -> Self {
        self.status = status;
        self
    }

    /// The same error with one more trace, after those it has.
    pub fn with_trace(mut self, trace: impl Into<String>) -> Self {
        self.traces.push(trace.into());
        self
    }

    /// The message followed by each trace on its own line (`\n… trace`): the one string that
    /// the form before 1.26 carries, and the text of [`ProtocolError::Remote`].
    pub fn full_message(&self) -> String {
        let mut out = self.message.clone();
        for trace in &self.traces {
            out.push_str(TRACE_SEPARATOR);
            out.push_str(trace);
        }
        out
    }

    /// Appends the error (without the `STDERR_ERROR` code) in its form for `version`.
    ///
    /// Before 1.26 the message and traces go as one string ([`Self::full_message`]). Nix sends
    /// its formatted `what()` there, which starts with `error: ` (and colour codes), so clients
    /// print `error: error: ...`; this sends the bare message instead.
    pub fn encode(&self, out: &mut BytesMut, version: ProtocolVersion) {
        if !version.at_least(1, 26) {
            put_str(out, &self.full_message());
            put_u64(out, self.status.into());
            return;
        }
        put_str(out, ERROR_TYPE);
        put_u64(out, self.level.code().into());
        put_str(out, ERROR_TYPE);
        put_str(out, &self.message);
        put_u64(out, 0);
        put_u64(out, self.traces.len() as u64);
        for trace in &self.traces {
            put_u64(out, 0);
            put_bytes(out, trace.as_bytes());
        }
    }

    /// Reads the error that follows `STDERR_ERROR` in its form for `version`, within `limits`
    /// (each string, the number of traces, and the whole error). Bytes that are not UTF-8 in
    /// messages are replaced. A type name other than `Error` is [`ProtocolError::BadString`];
    /// a position flag other than 0 (Nix never sends positions) is [`ProtocolError::BadValue`].
    pub async fn read<R: AsyncRead + Unpin + ?Sized>(
        r: &mut R,
        version: ProtocolVersion,
        limits: &Limits,
    ) -> Result<Self, ProtocolError> {
        Self::read_body(&mut MessageReader::new(r, limits), version).await
    }

    pub(crate) async fn read_body<R: AsyncRead + Unpin + ?Sized>(
        r: &mut MessageReader<'_, R>,
        version: ProtocolVersion,
    ) -> Result<Self, ProtocolError> {
        if !version.at_least(1, 26) {
            let message = r.text().await?;
            let status = super::types::code_from_wire(r.u64().await?, "exit status")?;
            return Ok(Self { status, ..Self::new(message) });
        }
        let kind = r.text().await?;
        if kind != ERROR_TYPE {
            return Err(ProtocolError::BadString { what: "error type", value: kind.chars().take(100).collect() });
        }
        let level = Verbosity::from_wire(r.u64().await?)?;
        let _unused_name = r.bytes().await?;
        let message = r.text().await?;
        check_no_position(r.u64().await?)?;
        let count = r.count().await?;
        let mut traces = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            check_no_position(r.u64().await?)?;
            traces.push(r.text().await?);
        }
        Ok(Self { message, status: DEFAULT_STATUS, level, traces })
    }
}

fn check_no_position(flag: u64) -> Result<(), ProtocolError> {
    match flag {
        0 => Ok(()),
        value => Err(ProtocolError::BadValue { what: "error position flag", value }),
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_message())
    }
}

impl std::error::Error for RemoteError {}

impl From<RemoteError> for ProtocolError {
    /// [`ProtocolError::Remote`] with the message and traces folded into one string
    /// ([`RemoteError::full_message`]) and the exit status; the level is dropped.
    fn from(e: RemoteError) -> Self {
        ProtocolError::Remote { message: e.full_message(), status: e.status.into() }
    }
}

impl From<ProtocolError> for RemoteError {
    /// The error to report to a peer: [`ProtocolError::Remote`] keeps its message and status
    /// (a status above `u32::MAX` becomes `u32::MAX`); any other error becomes its display text
    /// with status 1.
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Remote { message, status } => {
                Self::new(message).with_status(u32::try_from(status).unwrap_or(u32::MAX))
            }
            other => Self::new(other.to_string()),
        }
    }
}
