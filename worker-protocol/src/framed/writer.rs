//! [`FramedWriter`]: an `AsyncWrite` that sends what it is given as frames.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::ProtocolError;

/// The length of a frame header.
const HEADER: usize = 8;

/// Writes a framed stream to `W`. See [the module documentation](super).
///
/// Writes of at least a frame, when nothing is gathered, go out as one frame straight from the
/// caller's buffer, with no copy: the header (in one vectored write with the payload where the
/// inner writer supports it), then the payload. If the inner writer takes only part of the
/// payload, the write reports that part, and the next writes go on filling that frame directly,
/// as `write_all` does by offering the rest. Smaller writes are gathered into a frame first, as
/// Nix's `FramedSink` does.
///
/// A caller that abandons a write in the middle of such a frame (a cancelled `write_all`)
/// leaves the frame short: [`FramedWriter::finish`] (and shutting down) then fails with
/// [`io::ErrorKind::InvalidInput`], and [`FramedWriter::abort`] pads the frame with zero bytes
/// before the end marker.
///
/// Shutting it down ([`AsyncWriteExt::shutdown`]) ends the framed stream like
/// [`FramedWriter::finish`] but leaves the inner writer open: the connection goes on.
#[derive(Debug)]
pub struct FramedWriter<W> {
    inner: W,
    /// Bytes to send, in order: complete frames (headers and payloads) not yet accepted by
    /// `inner`, then, from `open`, the frame being gathered (a header slot and its payload).
    pending: BytesMut,
    /// Where the frame being gathered starts in `pending`, if one is.
    open: Option<usize>,
    /// How many payload bytes of a frame sent straight from the caller's buffers are still to
    /// come: the caller's next bytes go there, without a copy.
    direct_left: usize,
    frame_size: usize,
    ended: bool,
}

impl<W: AsyncWrite + Unpin> FramedWriter<W> {
    /// 64 KiB: the frames Nix's own client sends for file contents (it reads files in 64 KiB
    /// pieces and its `FramedSink` sends each piece as a frame; smaller writes it gathers into
    /// frames of up to 32 KiB). Nix's `FramedSource` reads a frame of any size whole. Against
    /// 32 KiB frames, 64 KiB frames halve the frame headers and reads on both sides: streaming
    /// 1 GiB through an in-memory pipe then costs about as much as copying it plainly
    /// (`benches/protocol.rs`).
    pub const DEFAULT_FRAME_SIZE: usize = 64 << 10;

    /// A writer with frames of [`Self::DEFAULT_FRAME_SIZE`].
    pub fn new(inner: W) -> Self {
        Self::with_frame_size(inner, Self::DEFAULT_FRAME_SIZE)
    }

    /// A writer with frames of at most `frame_size` bytes (at least 1).
    pub fn with_frame_size(inner: W, frame_size: usize) -> Self {
        let frame_size = frame_size.max(1);
        let pending = BytesMut::with_capacity(frame_size + HEADER);
        Self { inner, pending, open: None, direct_left: 0, frame_size, ended: false }
    }

    /// How many bytes are buffered, not yet handed to the inner writer (at most about two frames).
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    #[cfg(test)]
    pub(super) fn get_mut_for_tests(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Sends what is buffered and the end marker, flushes, and returns the inner writer.
    pub async fn finish(mut self) -> Result<W, ProtocolError> {
        self.shutdown().await.map_err(ProtocolError::from_io)?;
        Ok(self.inner)
    }

    /// Ends the stream early: drops the payload not yet framed, sends the frames already cut and
    /// the end marker, flushes, and returns the inner writer. The receiver sees a short stream
    /// (whose last frame is padded with zero bytes if a write was abandoned in its middle).
    pub async fn abort(mut self) -> Result<W, ProtocolError> {
        if let Some(start) = self.open.take() {
            self.pending.truncate(start);
        }
        self.pending.resize(self.pending.len() + self.direct_left, 0);
        self.direct_left = 0;
        self.finish().await
    }

    /// The payload gathered in the open frame.
    fn gathered(&self) -> usize {
        self.open.map_or(0, |start| self.pending.len() - start - HEADER)
    }

    /// The bytes that are ready to go: everything before the open frame.
    fn sealed(&self) -> usize {
        self.open.unwrap_or(self.pending.len())
    }

    /// Closes the open frame: writes its length into its header, or drops it if it is empty.
    fn seal(&mut self) {
        if let Some(start) = self.open.take() {
            let len = self.pending.len() - start - HEADER;
            if len == 0 {
                self.pending.truncate(start);
            } else {
                self.pending[start..start + HEADER].copy_from_slice(&(len as u64).to_le_bytes());
            }
        }
    }

    /// Hands all sealed bytes to the inner writer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let sealed = self.sealed();
            if sealed == 0 {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[..sealed]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
            if let Some(start) = &mut self.open {
                *start -= n;
            }
        }
    }

    /// Starts a frame of `data.len()` bytes straight from `data`: the header and as much of
    /// the payload as the inner writer takes, without copying. Returns how much of `data` went
    /// out; the rest of the frame is left to the next writes (`direct_left`). `Pending`, with
    /// nothing sent, if the inner writer takes nothing.
    fn poll_write_frame(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let header = (data.len() as u64).to_le_bytes();
        let inner = Pin::new(&mut self.inner);
        let sent = if inner.is_write_vectored() {
            ready!(inner.poll_write_vectored(cx, &[IoSlice::new(&header), IoSlice::new(data)]))?
        } else {
            ready!(inner.poll_write(cx, &header))?
        };
        if sent == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        if sent < HEADER {
            // Rare (the inner writer had room for less than a header): the frame is committed,
            // so its payload is copied to go after the rest of the header.
            self.pending.extend_from_slice(&header[sent..]);
            self.pending.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        let mut written = sent - HEADER;
        while written < data.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &data[written..]) {
                Poll::Ready(Ok(0)) | Poll::Pending => break,
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        self.direct_left = data.len() - written;
        if written == 0 {
            // The header went out but none of the payload: report one byte taken, copied, so
            // that the caller sees progress; the rest of the frame comes from the next writes.
            self.pending.extend_from_slice(&data[..1]);
            self.direct_left -= 1;
            return Poll::Ready(Ok(1));
        }
        Poll::Ready(Ok(written))
    }

    /// Sends the caller's next bytes as the rest of a frame already started.
    fn poll_continue_frame(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.direct_left);
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.direct_left -= written;
        Poll::Ready(Ok(written))
    }

    fn short_frame(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the framed stream ends {} bytes short of a frame already sent (a write was abandoned)", self.direct_left),
        )
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
        if this.direct_left > 0 {
            return this.poll_continue_frame(cx, buf);
        }
        if this.open.is_none() && buf.len() >= this.frame_size {
            return this.poll_write_frame(cx, &buf[..this.frame_size]);
        }
        if this.open.is_none() {
            this.open = Some(this.pending.len());
            this.pending.put_u64_le(0);
        }
        let n = (this.frame_size - this.gathered()).min(buf.len());
        this.pending.extend_from_slice(&buf[..n]);
        if this.gathered() == this.frame_size {
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
        if this.direct_left > 0 {
            return Poll::Ready(Err(this.short_frame()));
        }
        if !this.ended {
            this.seal();
            this.pending.put_u64_le(0);
            this.ended = true;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
}
