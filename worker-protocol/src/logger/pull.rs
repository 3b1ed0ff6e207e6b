//! [`PullSource`]: the daemon's side of `STDERR_READ`, an [`AsyncRead`] that pulls the client's
//! data in chunks as it is consumed.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::codes::STDERR_READ;
use crate::error::ProtocolError;
use crate::wire::padding_len;

/// Where a [`PullSource`] is in its exchange with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No request is out; the next read sends one.
    Idle,
    /// Writing the request; `sent` of its 16 bytes are out.
    Request { sent: usize },
    /// Flushing the request.
    Flush,
    /// Reading the answer's length; `got` of its 8 bytes are in `len_bytes`.
    Length { got: usize },
    /// Reading the answer's bytes and padding into the buffer; `filled` are in.
    Body { len: usize, filled: usize },
    /// Handing out `buf[pos..len]`.
    Serve { len: usize, pos: usize },
    /// The client answered with nothing: end of input.
    Eof,
    /// An error happened; the connection is out of step.
    Failed,
}

/// An [`AsyncRead`] over data the client sends on request, as Nix's daemon reads data for
/// `ImportPaths` and for `AddToStoreNar` before 1.23: each time the consumer needs bytes and none
/// are buffered, it sends `STDERR_READ` and a count (the chunk size, 64 KiB by default), flushes,
/// and reads the client's answer, a byte string of at most that count. An empty answer is the end
/// of the data.
///
/// Memory is bounded by one chunk, however much data passes through. An answer longer than the
/// count asked for is [`ProtocolError::StringTooLong`], non-zero padding is
/// [`ProtocolError::NonZeroPadding`], and a connection that ends mid-answer is
/// [`ProtocolError::UnexpectedEof`]; all come as [`io::Error`]s that
/// [`ProtocolError::from_io`] turns back, and every later read fails.
///
/// Like Nix's, the source asks for a whole chunk whatever the consumer wants; bytes the client
/// sent and the consumer never read are dropped with the source. Consumers that must not
/// over-ask (the client may have no more data to give) read exactly what they need, e.g. through
/// [`tokio::io::AsyncReadExt::take`] with a known size, or a NAR parser that stops at the end.
pub struct PullSource<'a, R: ?Sized, W: ?Sized> {
    reader: &'a mut R,
    writer: &'a mut W,
    request: [u8; 16],
    chunk: usize,
    state: State,
    len_bytes: [u8; 8],
    buf: Vec<u8>,
    received: u64,
}

impl<'a, R, W> PullSource<'a, R, W>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    /// The default chunk size: 64 KiB (Nix's daemon asks for 32 KiB at a time).
    pub const DEFAULT_CHUNK: usize = 64 << 10;
    /// The largest chunk size [`Self::with_chunk_size`] accepts.
    pub const MAX_CHUNK: usize = 8 << 20;

    /// A source that reads the client's answers from `reader` and sends requests to `writer`.
    pub fn new(reader: &'a mut R, writer: &'a mut W) -> Self {
        let mut source = Self {
            reader,
            writer,
            request: [0; 16],
            chunk: 0,
            state: State::Idle,
            len_bytes: [0; 8],
            buf: Vec::new(),
            received: 0,
        };
        source.set_chunk(Self::DEFAULT_CHUNK);
        source
    }

    /// The same source asking for `chunk` bytes at a time, kept between 1 and
    /// [`Self::MAX_CHUNK`]. Only takes effect for requests not yet sent.
    pub fn with_chunk_size(mut self, chunk: usize) -> Self {
        self.set_chunk(chunk.clamp(1, Self::MAX_CHUNK));
        self
    }

    fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk;
        self.request[..8].copy_from_slice(&STDERR_READ.to_le_bytes());
        self.request[8..].copy_from_slice(&(chunk as u64).to_le_bytes());
    }

    /// The bytes asked for per request.
    pub fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// How many data bytes the client has sent so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the client has signalled the end of its data.
    pub fn is_eof(&self) -> bool {
        self.state == State::Eof
    }

    /// The capacity of the internal buffer: at most the chunk size plus 7 bytes of padding.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drives the exchange until bytes are buffered, the data ends, or an error happens.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProtocolError>> {
        loop {
            match self.state {
                State::Serve { .. } | State::Eof => return Poll::Ready(Ok(())),
                State::Failed => {
                    return Poll::Ready(Err(ProtocolError::Io(io::Error::other(
                        "an earlier error left the STDERR_READ exchange out of step",
                    ))))
                }
                State::Idle => self.state = State::Request { sent: 0 },
                State::Request { sent } => {
                    let n = ready!(Pin::new(&mut *self.writer).poll_write(cx, &self.request[sent..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    let sent = sent + n;
                    self.state = if sent == self.request.len() { State::Flush } else { State::Request { sent } };
                }
                State::Flush => {
                    ready!(Pin::new(&mut *self.writer).poll_flush(cx))?;
                    self.state = State::Length { got: 0 };
                }
                State::Length { got } => {
                    let mut rb = ReadBuf::new(&mut self.len_bytes[got..]);
                    ready!(Pin::new(&mut *self.reader).poll_read(cx, &mut rb))?;
                    let got = got + rb.filled().len();
                    if rb.filled().is_empty() {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof));
                    }
                    if got < 8 {
                        self.state = State::Length { got };
                        continue;
                    }
                    let len = u64::from_le_bytes(self.len_bytes);
                    if len > self.chunk as u64 {
                        return Poll::Ready(Err(ProtocolError::StringTooLong { len, max: self.chunk }));
                    }
                    if len == 0 {
                        self.state = State::Eof;
                        continue;
                    }
                    let len = len as usize;
                    self.buf.clear();
                    self.buf.resize(len + padding_len(len as u64), 0);
                    self.state = State::Body { len, filled: 0 };
                }
                State::Body { len, filled } => {
                    let mut rb = ReadBuf::new(&mut self.buf[filled..]);
                    ready!(Pin::new(&mut *self.reader).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof));
                    }
                    let filled = filled + n;
                    if filled < self.buf.len() {
                        self.state = State::Body { len, filled };
                        continue;
                    }
                    if self.buf[len..].iter().any(|&b| b != 0) {
                        return Poll::Ready(Err(ProtocolError::NonZeroPadding));
                    }
                    self.received += len as u64;
                    self.state = State::Serve { len, pos: 0 };
                }
            }
        }
    }
}

impl<R, W> AsyncRead for PullSource<'_, R, W>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = ready!(this.poll_fill(cx)) {
            this.state = State::Failed;
            return Poll::Ready(Err(e.into_io()));
        }
        if let State::Serve { len, pos } = this.state {
            let n = (len - pos).min(out.remaining());
            out.put_slice(&this.buf[pos..pos + n]);
            this.state = if pos + n == len { State::Idle } else { State::Serve { len, pos: pos + n } };
        }
        Poll::Ready(Ok(()))
    }
}

impl<R: ?Sized, W: ?Sized> fmt::Debug for PullSource<'_, R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullSource")
            .field("chunk", &self.chunk)
            .field("state", &self.state)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}
