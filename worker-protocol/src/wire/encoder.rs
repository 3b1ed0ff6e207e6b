//! Appending wire primitives to a [`BytesMut`].

use bytes::{BufMut, BytesMut};

use super::padding_len;

/// Appends a `u64`.
pub fn put_u64(out: &mut BytesMut, value: u64) {
    out.put_u64_le(value);
}

/// Appends a boolean as 0 or 1.
pub fn put_bool(out: &mut BytesMut, value: bool) {
    put_u64(out, u64::from(value));
}

/// Appends a byte string: length, bytes, zero padding.
pub fn put_bytes(out: &mut BytesMut, data: &[u8]) {
    let len = data.len() as u64;
    out.reserve(8 + data.len() + 8);
    put_u64(out, len);
    out.put_slice(data);
    out.put_bytes(0, padding_len(len));
}

/// Appends a string (as a byte string).
pub fn put_str(out: &mut BytesMut, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Appends a list of strings: count, then each string.
pub fn put_strs<'a, I>(out: &mut BytesMut, items: I)
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    put_u64(out, items.len() as u64);
    for s in items {
        put_str(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut b = BytesMut::new();
        put_str(&mut b, "");
        assert_eq!(&b[..], &[0u8; 8]);
        b.clear();
        put_str(&mut b, "12345678");
        assert_eq!(b.len(), 16);
        b.clear();
        put_str(&mut b, "hi");
        assert_eq!(&b[..], b"\x02\0\0\0\0\0\0\0hi\0\0\0\0\0\0");
        b.clear();
        put_strs(&mut b, ["a", "b"]);
        assert_eq!(b.len(), 8 + 16 + 16);
        b.clear();
        put_bool(&mut b, true);
        assert_eq!(&b[..], &1u64.to_le_bytes());
    }
}
