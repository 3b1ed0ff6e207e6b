//! [`B3Digest`]: the 32-byte BLAKE3 digest that names blobs and directories.

use std::fmt;
use std::str::FromStr;

/// Length of a BLAKE3 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// A BLAKE3 digest (32 bytes): the address of a blob (of its contents) or of a directory (of its
/// canonical encoding). Shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct B3Digest([u8; DIGEST_LEN]);

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid BLAKE3 digest '{0}': expected 64 hex digits")]
pub struct ParseDigestError(String);

impl B3Digest {
    /// The digest with these bytes.
    pub const fn from_bytes(bytes: [u8; DIGEST_LEN]) -> Self {
        Self(bytes)
    }

    /// The BLAKE3 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The digest's bytes.
    pub const fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// Lowercase hex (64 digits), the form used in pool file names.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(DIGEST_LEN * 2);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        s
    }
}

impl From<blake3::Hash> for B3Digest {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for B3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for B3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B3Digest({})", self.to_hex())
    }
}

impl FromStr for B3Digest {
    type Err = ParseDigestError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let error = || ParseDigestError(s.chars().take(80).collect());
        let bytes = s.as_bytes();
        if bytes.len() != DIGEST_LEN * 2 {
            return Err(error());
        }
        let mut out = [0u8; DIGEST_LEN];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0]).ok_or_else(error)? << 4) | nibble(pair[1]).ok_or_else(error)?;
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_input_digest_is_blake3_of_nothing() {
        assert_eq!(
            B3Digest::of(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65), &"é".repeat(32)] {
            assert!(bad.parse::<B3Digest>().is_err(), "{bad}");
        }
        assert_eq!("AF".repeat(32).parse::<B3Digest>().unwrap(), B3Digest::from_bytes([0xaf; 32]));
    }

    proptest! {
        #[test]
        fn hex_round_trip(bytes in any::<[u8; 32]>()) {
            let digest = B3Digest::from_bytes(bytes);
            prop_assert_eq!(digest.to_string().parse::<B3Digest>().unwrap(), digest);
        }
    }
}
