//! Nix's base-32 encoding ("nix32").
//!
//! Nix writes bytes in base 32 with its own alphabet (no `e`, `o`, `u`, `t`) and, unlike RFC 4648,
//! starts from the *last* 5-bit group: the first character of the text carries the highest bits of
//! the last byte.

/// The 32 digits, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Errors from [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A character outside [`ALPHABET`].
    #[error("invalid character {0:?} in nix32 string")]
    InvalidCharacter(char),
    /// The text has bits set beyond the decoded length (it is not the encoding of any byte string).
    #[error("nix32 string has non-zero trailing bits")]
    TrailingBits,
}

/// Length of the nix32 text for `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len * 8 - 1) / 5 + 1
    }
}

/// Number of bytes that a nix32 text of `len` characters decodes to.
pub const fn decoded_len(len: usize) -> usize {
    len * 5 / 8
}

/// Encodes `input` as nix32 text.
pub fn encode(input: &[u8]) -> String {
    let len = encoded_len(input.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = input[i] >> j;
        let high = if i + 1 < input.len() {
            // j > 3 here whenever the high part matters; shifting by 8 would overflow a u8.
            (u16::from(input[i + 1]) << (8 - j)) as u8
        } else {
            0
        };
        out.push(ALPHABET[usize::from((low | high) & 0x1f)] as char);
    }
    out
}

fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'd' => Some(c - b'a' + 10),
        b'f'..=b'n' => Some(c - b'f' + 14),
        b'p'..=b's' => Some(c - b'p' + 23),
        b'v'..=b'z' => Some(c - b'v' + 27),
        _ => None,
    }
}

/// Decodes nix32 text. Every character must be a nix32 digit, and bits beyond the decoded length
/// must be zero.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let size = decoded_len(input.len());
    let mut out = vec![0u8; size];
    for (n, &c) in input.iter().rev().enumerate() {
        let digit = digit_value(c).ok_or(DecodeError::InvalidCharacter(char::from(c)))?;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        if i >= size {
            if digit != 0 {
                return Err(DecodeError::TrailingBits);
            }
            continue;
        }
        out[i] |= digit << j;
        let carry = (u16::from(digit) >> (8 - j)) as u8;
        if i + 1 < size {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return Err(DecodeError::TrailingBits);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // SHA-256 of the 11 bytes "Derive(...)" as in the golden content-address data.
        let hex = "15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527";
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap();
        assert_eq!(encode(&bytes), "09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm");
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x1f]), "0z");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode(b"0e"), Err(DecodeError::InvalidCharacter('e')));
        // "zz" is 10 bits for one byte: the top two bits are set beyond the byte.
        assert_eq!(decode(b"zz"), Err(DecodeError::TrailingBits));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), encoded_len(bytes.len()));
            prop_assert_eq!(decode(text.as_bytes()).unwrap(), bytes);
        }
    }
}
