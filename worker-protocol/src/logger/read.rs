//! Reading logger messages from an [`AsyncRead`], within a per-message byte budget.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::codes::*;
use super::types::{ActivityId, ActivityType, Field, ResultType, Verbosity};
use super::{LogMessage, RemoteError};
use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::ser::WireCtx;
use crate::wire::io::{read_padding, read_u64};
use crate::wire::padding_len;

/// Reads the parts of one message, charging every byte to a budget of
/// [`Limits::max_message_len`] so that a message of many large fields cannot add up without end.
pub(crate) struct MessageReader<'r, R: ?Sized> {
    r: &'r mut R,
    limits: Limits,
    budget: usize,
}

impl<'r, R: AsyncRead + Unpin + ?Sized> MessageReader<'r, R> {
    pub(crate) fn new(r: &'r mut R, limits: &Limits) -> Self {
        Self { r, limits: *limits, budget: limits.max_message_len }
    }

    fn charge(&mut self, n: u64) -> Result<(), ProtocolError> {
        match usize::try_from(n).ok().and_then(|n| self.budget.checked_sub(n)) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(ProtocolError::MessageTooLarge { max: self.limits.max_message_len }),
        }
    }

    pub(crate) async fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.charge(8)?;
        read_u64(self.r).await
    }

    /// A byte string of at most [`Limits::max_string_len`] bytes. Memory grows with the bytes
    /// that arrive, not with the announced length.
    pub(crate) async fn bytes(&mut self) -> Result<Vec<u8>, ProtocolError> {
        let len = self.u64().await?;
        let max = self.limits.max_string_len;
        if len > max as u64 {
            return Err(ProtocolError::StringTooLong { len, max });
        }
        self.charge(len + padding_len(len) as u64)?;
        let mut data = Vec::with_capacity((len as usize).min(64 << 10));
        let got = (&mut *self.r).take(len).read_to_end(&mut data).await.map_err(ProtocolError::from_io)?;
        if (got as u64) < len {
            return Err(ProtocolError::UnexpectedEof);
        }
        read_padding(self.r, len).await?;
        Ok(data)
    }

    /// A string meant for people: bytes that are not UTF-8 are replaced, not refused, so that
    /// an odd byte in a message cannot break the connection.
    pub(crate) async fn text(&mut self) -> Result<String, ProtocolError> {
        let bytes = self.bytes().await?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    pub(crate) async fn count(&mut self) -> Result<usize, ProtocolError> {
        let count = self.u64().await?;
        let max = self.limits.max_collection_len;
        if count > max as u64 {
            return Err(ProtocolError::TooManyItems { count, max });
        }
        Ok(count as usize)
    }

    async fn fields(&mut self) -> Result<Vec<Field>, ProtocolError> {
        let count = self.count().await?;
        let mut fields = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            fields.push(match self.u64().await? {
                Field::INT_TAG => Field::Int(self.u64().await?),
                Field::STRING_TAG => Field::String(self.bytes().await?),
                value => return Err(ProtocolError::BadValue { what: "logger field type", value }),
            });
        }
        Ok(fields)
    }

    /// The message that follows `code`.
    async fn message(&mut self, code: u64, ctx: &WireCtx) -> Result<LogMessage, ProtocolError> {
        Ok(match code {
            STDERR_NEXT => LogMessage::Next(self.bytes().await?),
            STDERR_WRITE => LogMessage::Write(self.bytes().await?),
            STDERR_READ => LogMessage::Read { max: self.u64().await? },
            STDERR_LAST => LogMessage::Last,
            STDERR_ERROR => LogMessage::Error(RemoteError::read_body(self, ctx.version).await?),
            STDERR_START_ACTIVITY => LogMessage::StartActivity {
                id: ActivityId(self.u64().await?),
                level: Verbosity::from_wire(self.u64().await?)?,
                kind: ActivityType::from_wire(self.u64().await?)?,
                text: self.bytes().await?,
                fields: self.fields().await?,
                parent: ActivityId(self.u64().await?),
            },
            STDERR_STOP_ACTIVITY => LogMessage::StopActivity { id: ActivityId(self.u64().await?) },
            STDERR_RESULT => LogMessage::Result {
                id: ActivityId(self.u64().await?),
                kind: ResultType::from_wire(self.u64().await?)?,
                fields: self.fields().await?,
            },
            other => return Err(ProtocolError::UnexpectedMessage(other)),
        })
    }
}

/// Reads one logger message at `ctx` (its version decides the form of errors; activities are
/// accepted at any version, as Nix's clients accept them). Nothing past the message is read.
///
/// Limits: each string at most [`Limits::max_string_len`] bytes, at most
/// [`Limits::max_collection_len`] fields or traces, and the whole message at most
/// [`Limits::max_message_len`] bytes. An unknown message code is
/// [`ProtocolError::UnexpectedMessage`].
pub async fn read_message<R>(reader: &mut R, ctx: &WireCtx) -> Result<LogMessage, ProtocolError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut r = MessageReader::new(reader, &ctx.limits);
    let code = r.u64().await?;
    r.message(code, ctx).await
}
