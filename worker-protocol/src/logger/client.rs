//! The client side: [`process_stderr`] handles a daemon's logger messages up to the reply,
//! handing log output and data to a [`LogSink`] and answering data requests from a source.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::codes::{STDERR_READ, STDERR_WRITE};
use super::read::read_message;
use super::LogMessage;
use crate::error::ProtocolError;
use crate::ser::WireCtx;
use crate::wire::io::write_bytes;

/// The most bytes a client sends in one answer to `STDERR_READ`, whatever the daemon asks for
/// (a shorter answer is always allowed), so a daemon cannot make the client allocate much.
pub const MAX_READ_ANSWER: usize = 1 << 20;

/// Where [`process_stderr`] puts what the daemon sends besides the reply.
pub trait LogSink {
    /// Log output: a [`LogMessage::Next`], `StartActivity`, `StopActivity` or `Result`.
    fn log(&mut self, message: LogMessage) -> impl Future<Output = Result<(), ProtocolError>> + Send;

    /// The data of one `STDERR_WRITE`. By default the data is refused with
    /// [`ProtocolError::UnexpectedMessage`], as Nix's clients refuse it when they expect none.
    fn write_data(&mut self, data: Vec<u8>) -> impl Future<Output = Result<(), ProtocolError>> + Send {
        drop(data);
        async { Err(ProtocolError::UnexpectedMessage(STDERR_WRITE)) }
    }
}

/// A [`LogSink`] that keeps everything in memory, up to a bound.
#[derive(Debug, Clone, Default)]
pub struct LogCollector {
    /// The log output received, in order.
    pub messages: Vec<LogMessage>,
    /// The data of all `STDERR_WRITE` messages, concatenated.
    pub data: Vec<u8>,
    max_bytes: usize,
    used: usize,
}

impl LogCollector {
    /// A collector that fails with [`ProtocolError::MessageTooLarge`] once more than
    /// `max_bytes` (counting texts, fields and data, plus 32 bytes per message) would be kept.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, ..Self::default() }
    }

    /// The texts of the log lines received, without their trailing line feeds, as Nix's
    /// clients print them (bytes that are not UTF-8 are replaced).
    pub fn lines(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                LogMessage::Next(text) => Some(String::from_utf8_lossy(text).trim_end().to_owned()),
                _ => None,
            })
            .collect()
    }

    fn take(&mut self, n: usize) -> Result<(), ProtocolError> {
        match self.used.checked_add(n).filter(|&total| total <= self.max_bytes) {
            Some(total) => {
                self.used = total;
                Ok(())
            }
            None => Err(ProtocolError::MessageTooLarge { max: self.max_bytes }),
        }
    }
}

/// Roughly how many bytes a message holds.
fn size_of(message: &LogMessage) -> usize {
    use super::Field;
    let fields = |fs: &[Field]| fs.iter().map(|f| 16 + f.as_bytes().map_or(0, <[u8]>::len)).sum::<usize>();
    32 + match message {
        LogMessage::Next(t) | LogMessage::Write(t) => t.len(),
        LogMessage::StartActivity { text, fields: fs, .. } => text.len() + fields(fs),
        LogMessage::Result { fields: fs, .. } => fields(fs),
        LogMessage::Error(e) => e.full_message().len(),
        LogMessage::Read { .. } | LogMessage::Last | LogMessage::StopActivity { .. } => 0,
    }
}

impl LogSink for LogCollector {
    async fn log(&mut self, message: LogMessage) -> Result<(), ProtocolError> {
        self.take(size_of(&message))?;
        self.messages.push(message);
        Ok(())
    }

    async fn write_data(&mut self, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.take(data.len())?;
        self.data.extend_from_slice(&data);
        Ok(())
    }
}

/// Handles the daemon's logger messages after a request, up to `STDERR_LAST`, as Nix's
/// `processStderr` does: log output goes to `sink.log`, `STDERR_WRITE` data to
/// `sink.write_data`, and each `STDERR_READ` is answered with the next bytes of `source` (at
/// most the count asked for and at most [`MAX_READ_ANSWER`]; an empty answer at its end).
/// `writer` is flushed first, so the request is sure to be out.
///
/// Returns `Ok(())` at `STDERR_LAST` (the reply follows on `reader`), and
/// [`ProtocolError::Remote`] at `STDERR_ERROR` (see [`super::read_message`] to keep the error's
/// level and traces apart). A `STDERR_READ` without a source is
/// [`ProtocolError::UnexpectedMessage`].
pub async fn process_stderr<R, W, K>(
    reader: &mut R,
    writer: &mut W,
    ctx: &WireCtx,
    sink: &mut K,
    mut source: Option<&mut (dyn AsyncRead + Unpin + Send)>,
) -> Result<(), ProtocolError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    K: LogSink + ?Sized,
{
    writer.flush().await.map_err(ProtocolError::from_io)?;
    let mut buf = Vec::new();
    loop {
        match read_message(reader, ctx).await? {
            LogMessage::Last => return Ok(()),
            LogMessage::Error(e) => return Err(e.into()),
            LogMessage::Write(data) => sink.write_data(data).await?,
            LogMessage::Read { max } => {
                let source = source.as_deref_mut().ok_or(ProtocolError::UnexpectedMessage(STDERR_READ))?;
                answer_read(source, writer, max, &mut buf).await?;
            }
            log => sink.log(log).await?,
        }
    }
}

/// Answers one `STDERR_READ` of at most `max` bytes with one read of `source`.
async fn answer_read<W: AsyncWrite + Unpin + ?Sized>(
    source: &mut (dyn AsyncRead + Unpin + Send),
    writer: &mut W,
    max: u64,
    buf: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let want = usize::try_from(max).unwrap_or(usize::MAX).min(MAX_READ_ANSWER);
    buf.resize(want, 0);
    let n = source.read(&mut buf[..want]).await.map_err(ProtocolError::from_io)?;
    write_bytes(writer, &buf[..n]).await?;
    writer.flush().await.map_err(ProtocolError::from_io)
}
