//! [`FramedReader`]: an `AsyncRead` over the payload of a framed stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::error::ProtocolError;

/// The length of a frame header.
const HEADER: usize = 8;

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
    /// An error met after a read had already yielded bytes, returned by the next read.
    deferred: Option<io::Error>,
}

impl<R: AsyncRead + Unpin> FramedReader<R> {
    /// A reader that refuses frames longer than `max_frame_len` (see
    /// [`crate::Limits::max_frame_len`]).
    pub fn new(inner: R, max_frame_len: usize) -> Self {
        Self { inner, state: State::Header { got: 0, header: [0; 8] }, max_frame_len, poisoned: None, deferred: None }
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
        if let Some(e) = self.deferred.take() {
            // The size limit does not stop draining; any other error does.
            let e = ProtocolError::from_io(e);
            if !matches!(e, ProtocolError::FrameTooLarge { .. }) {
                return Err(e);
            }
        }
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

impl<R: AsyncRead + Unpin> FramedReader<R> {
    /// One step: reads (the rest of) a frame header, or payload bytes into `out` (one read of
    /// the inner reader), or reports the end of the stream (`Ready(Ok)` with nothing added).
    ///
    /// When `out` has room for the rest of the frame and 8 bytes more, the read also asks for
    /// the next frame's header: it belongs to the stream (it may be the end marker), so this never
    /// reads past the stream's end, and a frame then costs one read of the inner reader, not two.
    fn poll_step(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(len) = self.poisoned {
            return Poll::Ready(Err(Self::too_large(len, self.max_frame_len)));
        }
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Header { got, header } if *got < HEADER => {
                    let mut rb = ReadBuf::new(&mut header[*got..]);
                    ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof.into_io()));
                    }
                    *got += n;
                }
                State::Header { header, .. } => {
                    let len = u64::from_le_bytes(*header);
                    self.state = if len == 0 { State::Done } else { State::Data { remaining: len } };
                    if len > self.max_frame_len as u64 {
                        self.poisoned = Some(len);
                        return Poll::Ready(Err(Self::too_large(len, self.max_frame_len)));
                    }
                }
                State::Data { remaining } => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let rest = usize::try_from(*remaining).unwrap_or(usize::MAX);
                    let want = match rest.checked_add(HEADER) {
                        Some(with_header) if with_header <= out.remaining() => with_header,
                        _ => rest.min(out.remaining()),
                    };
                    let mut rb = ReadBuf::new(out.initialize_unfilled_to(want));
                    ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
                    let filled = rb.filled();
                    let n = filled.len();
                    if n == 0 {
                        return Poll::Ready(Err(ProtocolError::UnexpectedEof.into_io()));
                    }
                    let data = n.min(rest);
                    let mut next = [0u8; HEADER];
                    next[..n - data].copy_from_slice(&filled[data..]);
                    out.advance(data);
                    *remaining -= data as u64;
                    if *remaining == 0 {
                        self.state = State::Header { got: n - data, header: next };
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FramedReader<R> {
    /// Fills `out` from as many frames as the inner reader has ready, so that small frames do
    /// not make for small reads. An error met after some bytes were read is kept for the next
    /// call, so those bytes are not lost.
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.deferred.take() {
            return Poll::Ready(Err(e));
        }
        let start = out.filled().len();
        loop {
            let before = out.filled().len();
            match this.poll_step(cx, out) {
                Poll::Ready(Ok(())) if out.filled().len() > before && out.remaining() > 0 => continue,
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) if out.filled().len() > start => {
                    this.deferred = Some(e);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if out.filled().len() > start => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
