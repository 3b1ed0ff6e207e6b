//! [`LogMessage`] and its encodings: exact ([`LogMessage::encode`]) and as sent to a client of
//! a given version and verbosity ([`downgrade`], [`encode_for`]).

use std::borrow::Cow;

use bytes::BytesMut;

use super::codes::*;
use super::types::{ActivityId, ActivityType, Field, LogFilter, ResultType, Verbosity};
use super::RemoteError;
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireEncode};
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_bytes, put_u64};

/// One message of the logger channel, which a daemon sends between reading an operation's
/// request and writing its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogMessage {
    /// A log line (`STDERR_NEXT`); Nix's daemons end it with a line feed, clients strip it.
    Next(Vec<u8>),
    /// Data for the client's sink (`STDERR_WRITE`).
    Write(Vec<u8>),
    /// A request for at most `max` bytes of the client's source (`STDERR_READ`).
    Read {
        /// The most bytes the client may send back.
        max: u64,
    },
    /// The end of the log; the operation's reply follows (`STDERR_LAST`).
    Last,
    /// The operation failed (`STDERR_ERROR`).
    Error(RemoteError),
    /// An activity starts (`STDERR_START_ACTIVITY`, 1.20 and later).
    StartActivity {
        /// Its identifier.
        id: ActivityId,
        /// Its level.
        level: Verbosity,
        /// What it does.
        kind: ActivityType,
        /// A description, possibly empty.
        text: Vec<u8>,
        /// Details that depend on `kind`.
        fields: Vec<Field>,
        /// The activity it belongs to, or [`ActivityId::NONE`].
        parent: ActivityId,
    },
    /// An activity stops (`STDERR_STOP_ACTIVITY`, 1.20 and later).
    StopActivity {
        /// Its identifier.
        id: ActivityId,
    },
    /// An activity reports something (`STDERR_RESULT`, 1.20 and later).
    Result {
        /// The activity.
        id: ActivityId,
        /// What it reports.
        kind: ResultType,
        /// The report; its shape depends on `kind`.
        fields: Vec<Field>,
    },
}

impl LogMessage {
    /// The number that opens the message on the wire.
    pub fn code(&self) -> u64 {
        match self {
            Self::Next(_) => STDERR_NEXT,
            Self::Write(_) => STDERR_WRITE,
            Self::Read { .. } => STDERR_READ,
            Self::Last => STDERR_LAST,
            Self::Error(_) => STDERR_ERROR,
            Self::StartActivity { .. } => STDERR_START_ACTIVITY,
            Self::StopActivity { .. } => STDERR_STOP_ACTIVITY,
            Self::Result { .. } => STDERR_RESULT,
        }
    }

    /// Whether this is log output (a line, an activity or a result), as opposed to data, a
    /// data request or the end of an operation. Only log output is filtered, downgraded and
    /// held back while no operation runs.
    pub fn is_log(&self) -> bool {
        matches!(self, Self::Next(_) | Self::StartActivity { .. } | Self::StopActivity { .. } | Self::Result { .. })
    }

    /// Whether `version` has this message: activities and results need 1.20.
    pub fn exists_at(&self, version: ProtocolVersion) -> bool {
        version.at_least(1, 20) || !matches!(self, Self::StartActivity { .. } | Self::StopActivity { .. } | Self::Result { .. })
    }

    /// Appends the message exactly as it is, in its form for `version` (errors change form at
    /// 1.26). An activity or result at a version before 1.20 is
    /// [`ProtocolError::Unrepresentable`]; [`encode_for`] turns those into what Nix sends.
    pub fn encode(&self, out: &mut BytesMut, version: ProtocolVersion) -> Result<(), ProtocolError> {
        if !self.exists_at(version) {
            return Err(ProtocolError::Unrepresentable { what: format!("logger message {:#x}", self.code()), version });
        }
        self.put(out, version);
        Ok(())
    }

    /// Appends the message without checking that `version` has it.
    fn put(&self, out: &mut BytesMut, version: ProtocolVersion) {
        put_u64(out, self.code());
        match self {
            Self::Next(text) | Self::Write(text) => put_bytes(out, text),
            Self::Read { max } => put_u64(out, *max),
            Self::Last => {}
            Self::Error(e) => e.encode(out, version),
            Self::StartActivity { id, level, kind, text, fields, parent } => {
                put_u64(out, id.0);
                put_u64(out, level.code().into());
                put_u64(out, kind.code().into());
                put_bytes(out, text);
                put_fields(out, fields);
                put_u64(out, parent.0);
            }
            Self::StopActivity { id } => put_u64(out, id.0),
            Self::Result { id, kind, fields } => {
                put_u64(out, id.0);
                put_u64(out, kind.code().into());
                put_fields(out, fields);
            }
        }
    }
}

fn put_fields(out: &mut BytesMut, fields: &[Field]) {
    put_u64(out, fields.len() as u64);
    for field in fields {
        match field {
            Field::Int(n) => {
                put_u64(out, Field::INT_TAG);
                put_u64(out, *n);
            }
            Field::String(s) => {
                put_u64(out, Field::STRING_TAG);
                put_bytes(out, s);
            }
        }
    }
}

impl WireEncode for LogMessage {
    /// [`LogMessage::encode`] at `ctx`'s version.
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        LogMessage::encode(self, out, ctx.version)
    }
}

/// What a daemon sends a client of `version` for `msg`, as Nix 2.26's `TunnelLogger` does it:
/// `None` when nothing is sent.
///
/// - From 1.20 every message goes as it is. Activities and results are not filtered by level
///   (clients filter them themselves).
/// - Before 1.20 there are no activities: an activity with a non-empty text becomes the log line
///   `text...` followed by a line feed, if `filter` lets its level through; one with an empty
///   text, and every stop and result (build output included), is dropped.
/// - Log lines ([`LogMessage::Next`]) carry no level: they are filtered where they are made (see
///   [`super::ServerLogger::log`]), so they pass here. So do all other messages.
pub fn downgrade(version: ProtocolVersion, filter: LogFilter, msg: &LogMessage) -> Option<Cow<'_, LogMessage>> {
    if msg.exists_at(version) {
        return Some(Cow::Borrowed(msg));
    }
    match msg {
        LogMessage::StartActivity { level, text, .. } if !text.is_empty() && filter.allows(*level) => {
            let mut line = Vec::with_capacity(text.len() + 4);
            line.extend_from_slice(text);
            line.extend_from_slice(b"...\n");
            Some(Cow::Owned(LogMessage::Next(line)))
        }
        _ => None,
    }
}

/// The bytes a daemon sends a client of `version` for `msg` ([`downgrade`], then encoded), or
/// `None` when nothing is sent.
pub fn encode_for(version: ProtocolVersion, filter: LogFilter, msg: &LogMessage) -> Option<BytesMut> {
    let msg = downgrade(version, filter, msg)?;
    let mut out = BytesMut::new();
    msg.put(&mut out, version);
    Some(out)
}
