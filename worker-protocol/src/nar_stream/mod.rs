//! [`NarStream`]: an `AsyncRead` that passes exactly one NAR through from a stream and then ends.
//!
//! The worker protocol sends some NARs raw, without a length: `NarFromPath`'s reply, and the NAR
//! after `AddToStore` before 1.25 and `AddToStoreNar` before 1.21. Only the NAR grammar tells where
//! such a NAR ends, so reading one means parsing it as it streams past. `NarStream` does that with
//! [`NarParser`], a push parser that never asks the inner reader for a byte beyond the archive's
//! end (the connection goes on after it) and never buffers file contents. It checks what
//! `nix_formats::nar::Reader` checks and fails with the same `ReadError`s, wrapped in
//! [`ProtocolError::BadNar`] (an [`io::Error`] that [`ProtocolError::from_io`] turns back).
//!
//! It reads small tokens with small reads: give it a buffered inner reader (such as
//! [`crate::wire::WireReader`]).

mod parser;
#[cfg(test)]
mod tests;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix_formats::nar::{Limits, ReadError};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

pub use parser::NarParser;

use crate::error::ProtocolError;

/// Passes one NAR through from `R`. See [the module documentation](self).
#[derive(Debug)]
pub struct NarStream<R> {
    inner: R,
    parser: NarParser,
}

impl<R: AsyncRead + Unpin> NarStream<R> {
    /// A stream of the NAR at the start of `inner`, checked against `limits`.
    pub fn new(inner: R, limits: Limits) -> Self {
        Self { inner, parser: NarParser::new(limits) }
    }

    /// Whether the whole NAR has been read.
    pub fn is_done(&self) -> bool {
        self.parser.is_done()
    }

    /// How many bytes of the NAR have been read.
    pub fn position(&self) -> u64 {
        self.parser.position()
    }

    /// The inner reader, positioned after the NAR if [`Self::is_done`].
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads and discards the rest of the NAR, so the inner reader is positioned after it.
    /// Returns how many bytes were skipped.
    pub async fn drain(&mut self) -> Result<u64, ProtocolError> {
        let mut scratch = vec![0u8; 64 << 10];
        let mut skipped = 0u64;
        loop {
            match self.read(&mut scratch).await.map_err(ProtocolError::from_io)? {
                0 => return Ok(skipped),
                n => skipped += n as u64,
            }
        }
    }

    fn error(e: ReadError) -> io::Error {
        let kind = match e {
            ReadError::Truncated => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, ProtocolError::BadNar(e))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for NarStream<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.parser.is_failed() {
            return Poll::Ready(Err(Self::error(ReadError::Poisoned)));
        }
        let want = this.parser.want();
        if want == 0 || out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let dst = out.initialize_unfilled_to(want.min(out.remaining()));
        let mut rb = ReadBuf::new(dst);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        if n == 0 {
            this.parser.fail();
            return Poll::Ready(Err(Self::error(ReadError::Truncated)));
        }
        this.parser.feed(&dst[..n]).map_err(Self::error)?;
        out.advance(n);
        Poll::Ready(Ok(()))
    }
}
