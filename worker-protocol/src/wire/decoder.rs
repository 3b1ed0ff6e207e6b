//! [`Decoder`]: an incremental, non-blocking decoder over a byte slice.

use nix_formats::content_address::ContentAddressError;
use nix_formats::derived_path::DerivedPathError;
use nix_formats::hash::HashError;
use nix_formats::realisation::RealisationError;
use nix_formats::store_path::StorePathError;

use super::padding_len;
use crate::error::ProtocolError;
use crate::limits::Limits;

/// Why decoding stopped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input ends inside the value; at least `needed` more bytes are required to go on.
    /// Not an error of the data: decode again from the start once more bytes are there.
    #[error("{needed} more bytes needed")]
    Incomplete {
        /// The least number of additional bytes needed (at least 1).
        needed: usize,
    },
    /// The data is malformed or breaks a limit.
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
}

impl DecodeError {
    /// The error for a stream that has ended: [`DecodeError::Incomplete`] becomes
    /// [`ProtocolError::UnexpectedEof`].
    pub fn at_eof(self) -> ProtocolError {
        match self {
            Self::Incomplete { .. } => ProtocolError::UnexpectedEof,
            Self::Invalid(e) => e,
        }
    }
}

macro_rules! invalid_from {
    ($($t:ty),*) => {$(
        impl From<$t> for DecodeError {
            fn from(e: $t) -> Self {
                Self::Invalid(e.into())
            }
        }
    )*};
}
invalid_from!(StorePathError, HashError, ContentAddressError, DerivedPathError, RealisationError);

/// Decodes wire values from a byte slice, enforcing [`Limits`].
///
/// Reading past the end gives [`DecodeError::Incomplete`]; the decoder's position is then
/// meaningless and decoding should restart from the beginning with more input.
#[derive(Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    depth: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `input`.
    pub fn new(input: &'a [u8], limits: Limits) -> Self {
        Self { input, pos: 0, limits, depth: 0 }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.input.len() - self.pos;
        if available < n {
            return Err(DecodeError::Incomplete { needed: n - available });
        }
        let out = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a `u64` that must be at most `max`; `what` names it in the error.
    pub fn read_bounded(&mut self, what: &'static str, max: u64) -> Result<u64, DecodeError> {
        let value = self.read_u64()?;
        if value > max {
            return Err(ProtocolError::IntegerTooLarge { what, value, max }.into());
        }
        Ok(value)
    }

    /// Reads a number that must fit in 32 bits (Nix's `readInt`).
    pub fn read_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.read_bounded(what, u32::MAX.into())?;
        u32::try_from(v).map_err(|_| ProtocolError::IntegerTooLarge { what, value: v, max: u32::MAX.into() }.into())
    }

    /// Reads a boolean: 0 or 1, anything else is an error.
    pub fn read_bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.read_u64()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(ProtocolError::BadValue { what, value }.into()),
        }
    }

    /// Reads a byte string of at most `max` bytes, checking that its padding is zero.
    pub fn read_bytes_max(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.read_u64()?;
        if len > max as u64 {
            return Err(ProtocolError::StringTooLong { len, max }.into());
        }
        let n = len as usize; // at most `max`, a usize
        let padded = n + padding_len(len);
        let available = self.input.len() - self.pos;
        if available < padded {
            return Err(DecodeError::Incomplete { needed: padded - available });
        }
        let all = self.take(padded)?;
        let (data, pad) = all.split_at(n);
        if pad.iter().any(|&b| b != 0) {
            return Err(ProtocolError::NonZeroPadding.into());
        }
        Ok(data)
    }

    /// Reads a byte string within [`Limits::max_string_len`].
    pub fn read_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.read_bytes_max(self.limits.max_string_len)
    }

    /// Reads a UTF-8 string within [`Limits::max_string_len`].
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.read_bytes()?;
        std::str::from_utf8(b).map_err(|_| ProtocolError::InvalidUtf8.into())
    }

    /// Reads a collection's element count, within [`Limits::max_collection_len`].
    pub fn read_count(&mut self) -> Result<usize, DecodeError> {
        let count = self.read_u64()?;
        let max = self.limits.max_collection_len;
        if count > max as u64 {
            return Err(ProtocolError::TooManyItems { count, max }.into());
        }
        Ok(count as usize)
    }

    /// A safe initial capacity for `count` elements of at least `min_size` bytes each: never more
    /// than the input could hold.
    pub fn capacity_for(&self, count: usize, min_size: usize) -> usize {
        count.min(self.remaining().len() / min_size.max(1))
    }

    /// Decodes `count` items with `item`, each taking at least `min_item_len` bytes on the wire.
    /// When an item runs out of input, the bytes reported missing include `min_item_len` for
    /// every item after it. A reader that waits for that many before decoding again (as
    /// [`crate::wire::WireReader`] does) re-parses a long collection that arrives in small
    /// pieces a number of times that grows with the logarithm of its length, instead of once
    /// per item: without it, a collection trickling in costs time quadratic in its size.
    pub fn items(
        &mut self,
        count: usize,
        min_item_len: usize,
        mut item: impl FnMut(&mut Self) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        for index in 0..count {
            match item(self) {
                Ok(()) => {}
                Err(DecodeError::Incomplete { needed }) => {
                    let rest = (count - index - 1).saturating_mul(min_item_len);
                    return Err(DecodeError::Incomplete { needed: needed.saturating_add(rest) });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs `f` one nesting level deeper, failing with [`ProtocolError::TooDeep`] beyond
    /// [`Limits::max_depth`].
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, DecodeError>) -> Result<T, DecodeError> {
        if self.depth >= self.limits.max_depth {
            return Err(ProtocolError::TooDeep { max: self.limits.max_depth }.into());
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Decoder<'_> {
        Decoder::new(b, Limits::DEFAULT)
    }

    #[test]
    fn numbers_and_incomplete() {
        let b = 0x0102_0304_0506_0708u64.to_le_bytes();
        assert_eq!(dec(&b).read_u64().unwrap(), 0x0102_0304_0506_0708);
        assert!(matches!(dec(&b[..3]).read_u64(), Err(DecodeError::Incomplete { needed: 5 })));
        assert!(matches!(dec(&2u64.to_le_bytes()).read_bool("flag"), Err(DecodeError::Invalid(ProtocolError::BadValue { .. }))));
        assert!(matches!(
            dec(&(1u64 << 32).to_le_bytes()).read_u32("n"),
            Err(DecodeError::Invalid(ProtocolError::IntegerTooLarge { .. }))
        ));
    }

    #[test]
    fn strings() {
        let mut b = 3u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"abc\0\0\0\0\0");
        let mut d = dec(&b);
        assert_eq!(d.read_str().unwrap(), "abc");
        assert_eq!(d.position(), 16);
        // Every strict prefix is incomplete, never an error.
        for n in 0..b.len() {
            assert!(matches!(dec(&b[..n]).read_str(), Err(DecodeError::Incomplete { .. })), "{n}");
        }
        // The needed count after the length is the data plus padding.
        assert!(matches!(dec(&b[..9]).read_bytes(), Err(DecodeError::Incomplete { needed: 7 })));
        b[12] = 1;
        assert!(matches!(dec(&b).read_bytes(), Err(DecodeError::Invalid(ProtocolError::NonZeroPadding))));
        let mut bad = 2u64.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0xff, 0xfe, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(dec(&bad).read_str(), Err(DecodeError::Invalid(ProtocolError::InvalidUtf8))));
    }

    #[test]
    fn items_report_the_minimum_of_the_rest() {
        let mut b = Vec::new();
        for v in [1u64, 2, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let mut seen = Vec::new();
        let r = dec(&b[..20]).items(10, 8, |d| d.read_u64().map(|v| seen.push(v)));
        // Item 3 lacks 4 bytes; items 4 to 10 need at least 8 each.
        assert!(matches!(r, Err(DecodeError::Incomplete { needed: 60 })), "{r:?}");
        assert_eq!(seen, [1, 2]);
        assert!(dec(&b).items(3, 8, |d| d.read_u64().map(drop)).is_ok());
        let bad = dec(&2u64.to_le_bytes()).items(5, 8, |d| d.read_bool("flag").map(drop));
        assert!(matches!(bad, Err(DecodeError::Invalid(ProtocolError::BadValue { .. }))));
    }

    #[test]
    fn limits_come_before_incomplete() {
        let huge = u64::MAX.to_le_bytes();
        assert!(matches!(dec(&huge).read_bytes(), Err(DecodeError::Invalid(ProtocolError::StringTooLong { .. }))));
        assert!(matches!(dec(&huge).read_count(), Err(DecodeError::Invalid(ProtocolError::TooManyItems { .. }))));
        let limits = Limits { max_depth: 2, ..Limits::DEFAULT };
        let mut d = Decoder::new(&[], limits);
        let r = d.nested(|d| d.nested(|d| d.nested(|_| Ok(()))));
        assert!(matches!(r, Err(DecodeError::Invalid(ProtocolError::TooDeep { max: 2 }))));
        assert!(d.nested(|d| d.nested(|_| Ok(()))).is_ok());
    }
}
