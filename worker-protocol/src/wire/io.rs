//! Reading wire primitives straight from an [`AsyncRead`] and writing them to an [`AsyncWrite`].
//!
//! Readers take exactly the bytes of the value and nothing more, so they can be mixed freely with
//! other reads of the same stream. Writers do not flush.

use std::collections::BTreeSet;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{encoder, padding_len, DecodeError, Decoder};
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};

/// Reads a `u64`.
pub async fn read_u64<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<u64, ProtocolError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).await.map_err(ProtocolError::from_io)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads a number that must fit in 32 bits (Nix's `readInt`); `what` names it in the error.
pub async fn read_u32<R: AsyncRead + Unpin + ?Sized>(r: &mut R, what: &'static str) -> Result<u32, ProtocolError> {
    let value = read_u64(r).await?;
    u32::try_from(value).map_err(|_| ProtocolError::IntegerTooLarge { what, value, max: u32::MAX.into() })
}

/// Reads a boolean: 0 or 1.
pub async fn read_bool<R: AsyncRead + Unpin + ?Sized>(r: &mut R, what: &'static str) -> Result<bool, ProtocolError> {
    match read_u64(r).await? {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(ProtocolError::BadValue { what, value }),
    }
}

/// Reads and checks the zero padding after a byte string of `len` bytes.
pub async fn read_padding<R: AsyncRead + Unpin + ?Sized>(r: &mut R, len: u64) -> Result<(), ProtocolError> {
    let mut pad = [0u8; 8];
    let n = padding_len(len);
    r.read_exact(&mut pad[..n]).await.map_err(ProtocolError::from_io)?;
    if pad[..n].iter().any(|&b| b != 0) {
        return Err(ProtocolError::NonZeroPadding);
    }
    Ok(())
}

/// Reads a byte string of at most `max` bytes. Memory grows with the bytes that actually arrive,
/// not with the announced length.
pub async fn read_bytes<R: AsyncRead + Unpin + ?Sized>(r: &mut R, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let len = read_u64(r).await?;
    if len > max as u64 {
        return Err(ProtocolError::StringTooLong { len, max });
    }
    let mut data = Vec::with_capacity((len as usize).min(64 << 10));
    let got = (&mut *r).take(len).read_to_end(&mut data).await.map_err(ProtocolError::from_io)?;
    if (got as u64) < len {
        return Err(ProtocolError::UnexpectedEof);
    }
    read_padding(r, len).await?;
    Ok(data)
}

/// Reads a UTF-8 string of at most `max` bytes.
pub async fn read_string<R: AsyncRead + Unpin + ?Sized>(r: &mut R, max: usize) -> Result<String, ProtocolError> {
    String::from_utf8(read_bytes(r, max).await?).map_err(|_| ProtocolError::InvalidUtf8)
}

/// Reads a collection count of at most `max`.
pub async fn read_count<R: AsyncRead + Unpin + ?Sized>(r: &mut R, max: usize) -> Result<usize, ProtocolError> {
    let count = read_u64(r).await?;
    if count > max as u64 {
        return Err(ProtocolError::TooManyItems { count, max });
    }
    Ok(count as usize)
}

/// Reads a list of at most `max_count` strings of at most `max_len` bytes each.
pub async fn read_string_list<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    max_count: usize,
    max_len: usize,
) -> Result<Vec<String>, ProtocolError> {
    let count = read_count(r, max_count).await?;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        out.push(read_string(r, max_len).await?);
    }
    Ok(out)
}

/// Reads a set of at most `max_count` strings of at most `max_len` bytes each. Like Nix, it
/// accepts the elements in any order and merges duplicates.
pub async fn read_string_set<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    max_count: usize,
    max_len: usize,
) -> Result<BTreeSet<String>, ProtocolError> {
    Ok(read_string_list(r, max_count, max_len).await?.into_iter().collect())
}

async fn write_buf<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, buf: BytesMut) -> Result<(), ProtocolError> {
    w.write_all(&buf).await.map_err(ProtocolError::from_io)
}

/// Writes a `u64`.
pub async fn write_u64<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, value: u64) -> Result<(), ProtocolError> {
    w.write_all(&value.to_le_bytes()).await.map_err(ProtocolError::from_io)
}

/// Writes a boolean as 0 or 1.
pub async fn write_bool<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, value: bool) -> Result<(), ProtocolError> {
    write_u64(w, value.into()).await
}

/// Writes a byte string with its length and padding.
pub async fn write_bytes<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, data: &[u8]) -> Result<(), ProtocolError> {
    let len = data.len() as u64;
    write_u64(w, len).await?;
    w.write_all(data).await.map_err(ProtocolError::from_io)?;
    w.write_all(&[0u8; 8][..padding_len(len)]).await.map_err(ProtocolError::from_io)
}

/// Writes a string list (or a set, when the items come sorted).
pub async fn write_string_list<'a, W, I>(w: &mut W, items: I) -> Result<(), ProtocolError>
where
    W: AsyncWrite + Unpin + ?Sized,
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: ExactSizeIterator,
{
    let mut buf = BytesMut::new();
    encoder::put_strs(&mut buf, items);
    write_buf(w, buf).await
}

/// Decodes one `T` straight from `r` without reading past its end: it reads exactly the bytes the
/// [`Decoder`] reports missing and decodes again, until the value is complete. Each retry re-parses
/// what came so far, so this suits small values (handshake fields, replies of a few strings);
/// use [`super::WireReader`] for large ones.
pub async fn read_value<T, R>(r: &mut R, ctx: &WireCtx) -> Result<T, ProtocolError>
where
    T: WireDecode,
    R: AsyncRead + Unpin + ?Sized,
{
    let mut buf = Vec::new();
    loop {
        match T::decode(&mut Decoder::new(&buf, ctx.limits), ctx) {
            Ok(value) => return Ok(value),
            Err(DecodeError::Invalid(e)) => return Err(e),
            Err(DecodeError::Incomplete { needed }) => {
                let target = buf.len().saturating_add(needed);
                if target > ctx.limits.max_message_len {
                    return Err(ProtocolError::MessageTooLarge { max: ctx.limits.max_message_len });
                }
                let got = (&mut *r).take(needed as u64).read_to_end(&mut buf).await.map_err(ProtocolError::from_io)?;
                if got < needed {
                    return Err(ProtocolError::UnexpectedEof);
                }
            }
        }
    }
}

/// Encodes `value` at `ctx` and writes it (without flushing).
pub async fn write_value<T, W>(w: &mut W, value: &T, ctx: &WireCtx) -> Result<(), ProtocolError>
where
    T: WireEncode + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = BytesMut::new();
    value.encode(&mut buf, ctx)?;
    write_buf(w, buf).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_primitives() {
        let mut out = Vec::new();
        write_u64(&mut out, 7).await.unwrap();
        write_bool(&mut out, true).await.unwrap();
        write_bytes(&mut out, b"hello").await.unwrap();
        write_string_list(&mut out, ["b", "a"]).await.unwrap();
        let mut r = &out[..];
        assert_eq!(read_u64(&mut r).await.unwrap(), 7);
        assert!(read_bool(&mut r, "b").await.unwrap());
        assert_eq!(read_string(&mut r, 100).await.unwrap(), "hello");
        assert_eq!(read_string_set(&mut r, 10, 10).await.unwrap(), ["a".to_owned(), "b".to_owned()].into());
        assert!(r.is_empty());
    }

    #[tokio::test]
    async fn errors() {
        let mut out = Vec::new();
        write_bytes(&mut out, b"hello").await.unwrap();
        assert!(matches!(read_string(&mut &out[..], 4).await, Err(ProtocolError::StringTooLong { len: 5, max: 4 })));
        for n in 0..out.len() {
            assert!(matches!(read_bytes(&mut &out[..n], 100).await, Err(ProtocolError::UnexpectedEof)), "{n}");
        }
        out[14] = 9;
        assert!(matches!(read_bytes(&mut &out[..], 100).await, Err(ProtocolError::NonZeroPadding)));
        // A huge announced length with no data behind it fails without allocating it.
        let mut huge = (60u64 << 20).to_le_bytes().to_vec();
        huge.extend_from_slice(b"abc");
        assert!(matches!(read_bytes(&mut &huge[..], 64 << 20).await, Err(ProtocolError::UnexpectedEof)));
        let mut list = Vec::new();
        write_string_list(&mut list, ["a", "b", "c"]).await.unwrap();
        assert!(matches!(read_string_list(&mut &list[..], 2, 10).await, Err(ProtocolError::TooManyItems { count: 3, max: 2 })));
        assert!(matches!(read_u32(&mut &u64::MAX.to_le_bytes()[..], "n").await, Err(ProtocolError::IntegerTooLarge { .. })));
    }

    #[tokio::test]
    async fn typed_values_without_over_reading() {
        let ctx = WireCtx::default();
        let mut out = Vec::new();
        write_value(&mut out, &vec!["a".to_owned(), "bc".to_owned()], &ctx).await.unwrap();
        out.extend_from_slice(b"next");
        let mut r = &out[..];
        let v: Vec<String> = read_value(&mut r, &ctx).await.unwrap();
        assert_eq!(v, ["a", "bc"]);
        assert_eq!(r, b"next");
        let short = &out[..20];
        assert!(matches!(read_value::<Vec<String>, _>(&mut &short[..], &ctx).await, Err(ProtocolError::UnexpectedEof)));
    }
}
