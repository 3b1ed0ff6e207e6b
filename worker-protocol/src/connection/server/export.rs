//! [`ExportWriter`]: data for the client's sink, sent as `STDERR_WRITE` messages.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;

use crate::logger::codes::STDERR_WRITE;
use crate::logger::MAX_WRITE_CHUNK;
use crate::wire::encoder::{put_bytes, put_u64};

/// An `AsyncWrite` that sends each piece written to it (at most
/// [`MAX_WRITE_CHUNK`] bytes at a time) as one `STDERR_WRITE` message, as Nix's daemon does for
/// `ExportPath`. It holds at most one encoded message; flush it before replying, as what is still
/// held when it is dropped is lost. Shutting it down only flushes: the connection goes on.
#[derive(Debug)]
pub struct ExportWriter<'a, W> {
    writer: &'a mut W,
    pending: BytesMut,
}

impl<'a, W: AsyncWrite + Unpin> ExportWriter<'a, W> {
    pub(super) fn new(writer: &'a mut W) -> Self {
        Self { writer, pending: BytesMut::new() }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut *self.writer).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ExportWriter<'_, W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_drain(cx))?;
        let n = buf.len().min(MAX_WRITE_CHUNK);
        put_u64(&mut this.pending, STDERR_WRITE);
        put_bytes(&mut this.pending, &buf[..n]);
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut *this.writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
