//! [`WireReader`]: a buffered [`AsyncRead`] that decodes whole typed values.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{DecodeError, Decoder};
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode};

/// The least that [`WireReader`] asks its inner reader for at a time.
const MIN_READ: usize = 16 << 10;

/// Buffers an [`AsyncRead`] and decodes typed values from it.
///
/// [`WireReader::read_value`] decodes from the buffered bytes with a [`Decoder`]; when that reports
/// [`DecodeError::Incomplete`], it reads at least the missing bytes (plus whatever else is already
/// available) and decodes again from the start. A value may not need more than
/// [`crate::Limits::max_message_len`] buffered bytes. Each retry re-parses the buffered part, so a
/// huge collection that trickles in costs more than one that arrives in a few reads; code that
/// expects very large collections should read them element by element.
///
/// `WireReader` is itself an `AsyncRead` that hands out buffered bytes first, so raw reads
/// (framed streams, NARs) can follow typed values on the same connection. Small raw reads (under
/// 4 KiB) fill the buffer rather than reading just what they ask for, so once raw reads have begun
/// the inner reader may be ahead of them: keep reading through the `WireReader`.
#[derive(Debug)]
pub struct WireReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> WireReader<R> {
    /// A reader over `inner` with an empty buffer.
    pub fn new(inner: R) -> Self {
        Self { inner, buf: BytesMut::new() }
    }

    /// The bytes read from the inner reader but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader, mutably. Reading from it directly skips the buffered bytes.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The inner reader and the bytes still buffered.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }

    /// Decodes one `T` at `ctx`, reading as much as it needs.
    pub async fn read_value<T: WireDecode>(&mut self, ctx: &WireCtx) -> Result<T, ProtocolError> {
        self.read_with(ctx, T::decode).await
    }

    /// Decodes one value with `decode` (a function over a [`Decoder`], such as a closure that
    /// decodes a request for an opcode read before), reading as much as it needs. `decode` may be
    /// called several times, each time from the start of the value.
    pub async fn read_with<T, F>(&mut self, ctx: &WireCtx, mut decode: F) -> Result<T, ProtocolError>
    where
        F: FnMut(&mut Decoder<'_>, &WireCtx) -> Result<T, DecodeError>,
    {
        loop {
            let mut decoder = Decoder::new(&self.buf, ctx.limits);
            match decode(&mut decoder, ctx) {
                Ok(value) => {
                    let used = decoder.position();
                    self.buf.advance(used);
                    return Ok(value);
                }
                Err(DecodeError::Invalid(e)) => return Err(e),
                Err(DecodeError::Incomplete { needed }) => self.fill(needed, ctx.limits.max_message_len).await?,
            }
        }
    }

    /// Whether the stream has ended here: nothing is buffered and the inner reader gives no more
    /// bytes. Otherwise some bytes are buffered afterwards. A server asks this between requests,
    /// to tell a client that closed the connection from one that broke off inside a message.
    pub async fn at_eof(&mut self) -> Result<bool, ProtocolError> {
        if !self.buf.is_empty() {
            return Ok(false);
        }
        self.buf.reserve(MIN_READ);
        let n = (&mut self.inner).take(MIN_READ as u64).read_buf(&mut self.buf).await.map_err(ProtocolError::from_io)?;
        Ok(n == 0)
    }

    /// Reads until at least `needed` more bytes are buffered.
    ///
    /// Each read asks for at most as many bytes as are buffered already (and at least
    /// [`MIN_READ`]), whatever `needed` says: the buffer grows with the bytes that actually
    /// arrive, at most doubling at a time, so a peer that announces a 60 MiB string and sends
    /// nothing costs no memory. (Asking for more than `needed` only takes what is already there;
    /// it never waits for it.)
    async fn fill(&mut self, needed: usize, max_message_len: usize) -> Result<(), ProtocolError> {
        let target = self.buf.len().saturating_add(needed);
        if target > max_message_len {
            return Err(ProtocolError::MessageTooLarge { max: max_message_len });
        }
        while self.buf.len() < target {
            let want = self.buf.len().max(MIN_READ).min(max_message_len - self.buf.len());
            self.buf.reserve(want);
            let n = (&mut self.inner).take(want as u64).read_buf(&mut self.buf).await.map_err(ProtocolError::from_io)?;
            if n == 0 {
                return Err(ProtocolError::UnexpectedEof);
            }
        }
        Ok(())
    }
}

/// Reads of fewer bytes than this through [`WireReader`]'s `AsyncRead` fill its buffer instead
/// (so the small tokens of a NAR do not each cost a system call); larger reads go straight through.
const SMALL_READ: usize = 4 << 10;

impl<R: AsyncRead + Unpin> AsyncRead for WireReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.buf.is_empty() && out.remaining() < SMALL_READ {
            let this = &mut *self;
            let n = std::task::ready!(poll_fill_buf(Pin::new(&mut this.inner), cx, &mut this.buf))?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        if !self.buf.is_empty() {
            let n = self.buf.len().min(out.remaining());
            out.put_slice(&self.buf[..n]);
            self.buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

/// Appends at most [`MIN_READ`] bytes read from `reader` to `buf` and returns how many came.
fn poll_fill_buf<R: AsyncRead>(reader: Pin<&mut R>, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
    let start = buf.len();
    buf.resize(start + MIN_READ, 0);
    let mut rb = ReadBuf::new(&mut buf[start..]);
    let polled = reader.poll_read(cx, &mut rb);
    let n = rb.filled().len();
    buf.truncate(start + n);
    std::task::ready!(polled)?;
    Poll::Ready(Ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::WORKER_PROTOCOL_VERSION;
    use crate::Limits;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn values_across_small_writes() {
        let ctx = WireCtx::worker(WORKER_PROTOCOL_VERSION);
        let mut bytes = BytesMut::new();
        crate::wire::encoder::put_strs(&mut bytes, ["alpha", "beta", "gamma"]);
        crate::wire::encoder::put_u64(&mut bytes, 42);
        bytes.extend_from_slice(b"raw tail");
        let (mut tx, rx) = tokio::io::duplex(3);
        let data = bytes.to_vec();
        let writer = tokio::spawn(async move {
            for chunk in data.chunks(5) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut r = WireReader::new(rx);
        let list: Vec<String> = r.read_value(&ctx).await.unwrap();
        assert_eq!(list, ["alpha", "beta", "gamma"]);
        assert_eq!(r.read_value::<u64>(&ctx).await.unwrap(), 42);
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, b"raw tail");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn announced_length_sets_no_memory_aside() {
        let ctx = WireCtx::worker(WORKER_PROTOCOL_VERSION);
        let mut bytes = BytesMut::new();
        crate::wire::encoder::put_u64(&mut bytes, 60 << 20);
        bytes.extend_from_slice(&[b'x'; 100]);
        let mut r = WireReader::new(&bytes[..]);
        assert!(matches!(r.read_value::<bytes::Bytes>(&ctx).await, Err(ProtocolError::UnexpectedEof)));
        assert!(r.buf.capacity() <= 2 * MIN_READ, "capacity {}", r.buf.capacity());
        // Bytes that do come are taken in growing reads, and the value decodes.
        let mut bytes = BytesMut::new();
        crate::wire::encoder::put_bytes(&mut bytes, &vec![7u8; 3 << 20]);
        let mut r = WireReader::new(&bytes[..]);
        assert_eq!(r.read_value::<bytes::Bytes>(&ctx).await.unwrap().len(), 3 << 20);
    }

    #[tokio::test]
    async fn eof_and_message_limit() {
        let ctx = WireCtx::worker(WORKER_PROTOCOL_VERSION);
        let mut r = WireReader::new(&[1u8, 0, 0][..]);
        assert!(matches!(r.read_value::<u64>(&ctx).await, Err(ProtocolError::UnexpectedEof)));
        let small = ctx.clone().with_limits(Limits { max_message_len: 64, ..Limits::DEFAULT });
        let mut bytes = BytesMut::new();
        crate::wire::encoder::put_bytes(&mut bytes, &[7u8; 100]);
        let mut r = WireReader::new(&bytes[..]);
        assert!(matches!(r.read_value::<String>(&small).await, Err(ProtocolError::MessageTooLarge { max: 64 })));
    }
}
