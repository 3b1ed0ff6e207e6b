//! Base64 as Nix reads it in keys and signatures.
//!
//! Nix's decoder uses the standard alphabet, skips line feeds anywhere, treats padding as optional
//! and ignores leftover bits. This one accepts the same texts, except that after the first `=` only
//! more `=` and line feeds may follow (Nix silently drops anything there).

use data_encoding::BASE64;

/// Errors from [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside the standard base64 alphabet.
    #[error("invalid character {0:?} in base64 text")]
    InvalidCharacter(char),
    /// Something other than `=` or a line feed after the padding started.
    #[error("base64 text continues after its padding")]
    DataAfterPadding,
}

fn digit_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 text the way Nix does (see the module documentation).
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    for c in text.bytes() {
        if c == b'\n' {
            continue;
        }
        if padding || c == b'=' {
            if c != b'=' {
                return Err(Base64Error::DataAfterPadding);
            }
            padding = true;
            continue;
        }
        let digit = digit_value(c).ok_or_else(|| Base64Error::InvalidCharacter(bad_char(text, c)))?;
        acc = (acc << 6 | digit) & 0xfff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Masked to 8 bits, so the cast keeps every bit that matters.
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    Ok(out)
}

/// The character in `text` whose UTF-8 encoding starts with (or contains) byte `b`.
fn bad_char(text: &str, b: u8) -> char {
    if b.is_ascii() {
        return char::from(b);
    }
    text.chars().find(|c| !c.is_ascii()).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Standard padded base64, as Nix writes it.
pub fn encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nix_leniencies() {
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert_eq!(decode("aGk").unwrap(), b"hi");
        assert_eq!(decode("aG\nk=\n").unwrap(), b"hi");
        assert_eq!(decode("").unwrap(), b"");
        // Leftover bits are ignored: "aGl" also decodes to "hi".
        assert_eq!(decode("aGl=").unwrap(), b"hi");
    }

    #[test]
    fn rejects() {
        assert_eq!(decode("aG k="), Err(Base64Error::InvalidCharacter(' ')));
        assert_eq!(decode("aGk=x"), Err(Base64Error::DataAfterPadding));
        assert_eq!(decode("aGé"), Err(Base64Error::InvalidCharacter('é')));
        assert_eq!(decode("a-_b"), Err(Base64Error::InvalidCharacter('-')));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text).unwrap(), bytes.clone());
            prop_assert_eq!(decode(text.trim_end_matches('=')).unwrap(), bytes);
        }
    }
}
