//! [`FramedReader`]: an `AsyncRead` over the payload of a framed stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::error::ProtocolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a frame header; `got` of its 8 bytes are in `header`.
    Header { got: usize, header: [u8; 8] },
    /// Inside a frame with `remaining` payload bytes to go.
    Data { remaining: u64 },
    /// The end marker has been read.
    Done,
}

/// Reads the payload of a framed stream from `R`. See [the module documentation](super).
#[derive(Debug)]
pub struct FramedReader<R> {
    inner: R,
    state: State,
    max_frame_len: usize,
    /// Set by a frame over the limit: reads fail until [`FramedReader::drain`] skips the rest.
    poisoned: Option<u64>,
}

impl<R: AsyncRead + Unpin> FramedReader<R> {
    /// A reader that refuses frames longer than `max_frame_len` (see
    /// [`crate::Limits::max_frame_len`]).
    pub fn new(inner: R, max_frame_len: usize) -> Self {
        Self { inner, state: State::Header { got: 0, header: [0; 8] }, max_frame_len, poisoned: None }
    }

    /// Whether the end marker has been read.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader, positioned after the end marker if [`Self::is_finished`].
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Skips the rest of the stream up to and including the end marker, without holding any
    /// frame in memory and regardless of the frame size limit. Returns how many payload bytes
    /// were skipped. Afterwards the inner reader is positioned after the stream.
    pub async fn drain(&mut self) -> Result<u64, ProtocolError> {
        self.poisoned = None;
        let limit = std::mem::replace(&mut self.max_frame_len, usize::MAX);
        let mut scratch = vec![0u8; 64 << 10];
        let mut skipped = 0u64;
        let result = loop {
            match self.read(&mut scratch).await {
                Ok(0) => break Ok(skipped),
                Ok(n) => skipped += n as u64,
                Err(e) => break Err(ProtocolError::from_io(e)),
            }
        };
        self.max_frame_len = limit;
        result
    }

    fn too_large(len: u64, max: usize) -> io::Error {
        ProtocolError::FrameTooLarge { len, max }.into_io()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FramedReader<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(len) = this.poisoned {
            return Poll::Ready(Err(Self::too_large(len, this.max_frame_len)));
        }
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Header { got, header } => {
                    let mut rb = ReadBuf::new(&mut header[*got..]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof.into_io()));
                    }
                    *got += n;
                    if *got < 8 {
                        continue;
                    }
                    let len = u64::from_le_bytes(*header);
                    this.state = if len == 0 { State::Done } else { State::Data { remaining: len } };
                    if len > this.max_frame_len as u64 {
                        this.poisoned = Some(len);
                        return Poll::Ready(Err(Self::too_large(len, this.max_frame_len)));
                    }
                }
                State::Data { remaining } => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let limit = usize::try_from(*remaining).unwrap_or(usize::MAX).min(out.remaining());
                    let dst = out.initialize_unfilled_to(limit);
                    let mut rb = ReadBuf::new(dst);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof.into_io()));
                    }
                    out.advance(n);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        this.state = State::Header { got: 0, header: [0; 8] };
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}
