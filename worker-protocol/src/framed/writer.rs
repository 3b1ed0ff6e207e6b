//! [`FramedWriter`]: an `AsyncWrite` that sends what it is given as frames.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::ProtocolError;

/// Writes a framed stream to `W`. See [the module documentation](super).
///
/// Shutting it down ([`AsyncWriteExt::shutdown`]) ends the framed stream like
/// [`FramedWriter::finish`] but leaves the inner writer open: the connection goes on.
#[derive(Debug)]
pub struct FramedWriter<W> {
    inner: W,
    /// Payload of the frame being filled.
    chunk: BytesMut,
    /// Encoded frames (headers and payloads) not yet accepted by `inner`.
    pending: BytesMut,
    frame_size: usize,
    ended: bool,
}

impl<W: AsyncWrite + Unpin> FramedWriter<W> {
    /// The frame size Nix uses (its sink buffer size).
    pub const DEFAULT_FRAME_SIZE: usize = 32 << 10;

    /// A writer with frames of [`Self::DEFAULT_FRAME_SIZE`].
    pub fn new(inner: W) -> Self {
        Self::with_frame_size(inner, Self::DEFAULT_FRAME_SIZE)
    }

    /// A writer with frames of at most `frame_size` bytes (at least 1).
    pub fn with_frame_size(inner: W, frame_size: usize) -> Self {
        let frame_size = frame_size.max(1);
        Self { inner, chunk: BytesMut::with_capacity(frame_size), pending: BytesMut::new(), frame_size, ended: false }
    }

    /// How many bytes are buffered, not yet handed to the inner writer (at most about two frames).
    pub fn buffered(&self) -> usize {
        self.chunk.len() + self.pending.len()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Sends what is buffered and the end marker, flushes, and returns the inner writer.
    pub async fn finish(mut self) -> Result<W, ProtocolError> {
        self.shutdown().await.map_err(ProtocolError::from_io)?;
        Ok(self.inner)
    }

    /// Ends the stream early: drops the payload not yet framed, sends the frames already cut and
    /// the end marker, flushes, and returns the inner writer. The receiver sees a short stream.
    pub async fn abort(mut self) -> Result<W, ProtocolError> {
        self.chunk.clear();
        self.finish().await
    }

    /// Moves the chunk, as one frame, into the pending bytes.
    fn seal(&mut self) {
        if !self.chunk.is_empty() {
            self.pending.put_u64_le(self.chunk.len() as u64);
            self.pending.extend_from_slice(&self.chunk);
            self.chunk.clear();
        }
    }

    /// Hands all pending bytes to the inner writer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for FramedWriter<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "framed stream already ended")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Accept nothing new while a whole frame still waits for the peer: backpressure.
        ready!(this.poll_drain(cx))?;
        let n = (this.frame_size - this.chunk.len()).min(buf.len());
        this.chunk.extend_from_slice(&buf[..n]);
        if this.chunk.len() == this.frame_size {
            this.seal();
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.seal();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Ends the framed stream (buffered frames, then the end marker) and flushes; the inner writer
    /// stays open.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            this.seal();
            this.pending.put_u64_le(0);
            this.ended = true;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
}
