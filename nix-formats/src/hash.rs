//! Hashes as Nix uses them: the algorithms, the four text forms, and hash compression.
//!
//! Text forms: base16 (lowercase hex), nix32 (see [`crate::nixbase32`]), base64 (standard, padded)
//! and SRI (`sha256-<base64>`). A hash may be prefixed with its algorithm (`sha256:…`); without a
//! prefix the algorithm must be known from context and the encoding is told apart by length.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use sha2::Digest;

use crate::nixbase32;

/// A hash algorithm Nix knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl Algorithm {
    /// All algorithms, in Nix's order.
    pub const ALL: [Algorithm; 4] = [Self::Md5, Self::Sha1, Self::Sha256, Self::Sha512];

    /// The digest size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The name Nix prints (`md5`, `sha1`, `sha256`, `sha512`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        match s {
            "md5" => Ok(Self::Md5),
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(HashError::UnknownAlgorithm(truncate(s))),
        }
    }
}

/// A text encoding of a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lowercase hexadecimal.
    Base16,
    /// Nix's base 32.
    Nix32,
    /// Standard base64 with padding.
    Base64,
    /// `algo-base64`, as in Subresource Integrity.
    Sri,
}

impl FromStr for Encoding {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        match s {
            "base16" => Ok(Self::Base16),
            "nix32" | "base32" => Ok(Self::Nix32),
            "base64" => Ok(Self::Base64),
            "sri" => Ok(Self::Sri),
            _ => Err(HashError::UnknownEncoding(truncate(s))),
        }
    }
}

/// Errors from parsing hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The algorithm name is not one Nix knows.
    #[error("unknown hash algorithm '{0}'")]
    UnknownAlgorithm(String),
    /// The encoding name is not one Nix knows.
    #[error("unknown hash format '{0}', expect 'base16', 'base32', 'nix32', 'base64' or 'sri'")]
    UnknownEncoding(String),
    /// The text has no algorithm prefix and none was given.
    #[error("hash '{0}' does not include a type, nor is the type otherwise known from context")]
    MissingAlgorithm(String),
    /// The algorithm in the text differs from the expected one.
    #[error("hash '{text}' should have type '{expected}'")]
    WrongAlgorithm {
        /// The hash text.
        text: String,
        /// The algorithm expected.
        expected: Algorithm,
    },
    /// The text's length matches no encoding of the algorithm, or its digits are invalid.
    #[error("hash '{text}' has wrong length or invalid characters for hash type '{algo}'")]
    BadEncoding {
        /// The hash text.
        text: String,
        /// The algorithm it was parsed as.
        algo: Algorithm,
    },
    /// The digest has the wrong number of bytes for its algorithm.
    #[error("digest has {got} bytes, but {algo} needs {}", algo.size())]
    WrongLength {
        /// The algorithm.
        algo: Algorithm,
        /// The number of bytes given.
        got: usize,
    },
}

/// Keeps error messages short when the input is huge.
fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A hash: an algorithm and its digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash {
    algo: Algorithm,
    digest: [u8; 64],
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_sri())
    }
}

impl fmt::Display for Hash {
    /// Nix's default form: `algo:nix32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo, self.to_nix32())
    }
}

impl Hash {
    /// A hash from its digest bytes, which must have the algorithm's size.
    pub fn from_digest(algo: Algorithm, digest: &[u8]) -> Result<Self, HashError> {
        if digest.len() != algo.size() {
            return Err(HashError::WrongLength { algo, got: digest.len() });
        }
        let mut d = [0u8; 64];
        d[..digest.len()].copy_from_slice(digest);
        Ok(Self { algo, digest: d })
    }

    /// The hash of `algo` whose digest is all zeros (Nix's placeholder for an unknown hash).
    pub fn zero(algo: Algorithm) -> Self {
        Self { algo, digest: [0u8; 64] }
    }

    /// Hashes `data` in one go.
    pub fn of(algo: Algorithm, data: &[u8]) -> Self {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest[..self.algo.size()]
    }

    /// Lowercase hex, no prefix.
    pub fn to_base16(&self) -> String {
        to_base16(self.digest())
    }

    /// nix32, no prefix.
    pub fn to_nix32(&self) -> String {
        nixbase32::encode(self.digest())
    }

    /// Padded base64, no prefix.
    pub fn to_base64(&self) -> String {
        to_base64(self.digest())
    }

    /// `algo-base64`.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo, self.to_base64())
    }

    /// The text in `encoding`; `with_algo` adds the `algo:` prefix (SRI always names its algorithm).
    pub fn encode(&self, encoding: Encoding, with_algo: bool) -> String {
        let body = match encoding {
            Encoding::Base16 => self.to_base16(),
            Encoding::Nix32 => self.to_nix32(),
            Encoding::Base64 => self.to_base64(),
            Encoding::Sri => return self.to_sri(),
        };
        if with_algo {
            format!("{}:{}", self.algo, body)
        } else {
            body
        }
    }

    /// Parses any form Nix accepts: `algo:text`, `algo-base64` (SRI), or bare text when `algo` is
    /// given. With both a prefix and `algo`, they must agree.
    pub fn parse_any(text: &str, algo: Option<Algorithm>) -> Result<Self, HashError> {
        if let Some((name, rest)) = text.split_once(':') {
            let a: Algorithm = name.parse()?;
            check_expected(text, a, algo)?;
            return Self::parse_bare(rest, a).map_err(|_| bad(text, a));
        }
        if let Some((name, rest)) = text.split_once('-') {
            if let Ok(a) = name.parse::<Algorithm>() {
                check_expected(text, a, algo)?;
                return Self::parse_base64(rest, a).map_err(|_| bad(text, a));
            }
        }
        match algo {
            Some(a) => Self::parse_bare(text, a),
            None => Err(HashError::MissingAlgorithm(truncate(text))),
        }
    }

    /// Parses a hash that names its algorithm (`algo:text` or SRI).
    pub fn parse_prefixed(text: &str) -> Result<Self, HashError> {
        Self::parse_any(text, None)
    }

    /// Parses SRI (`algo-base64`) only.
    pub fn parse_sri(text: &str) -> Result<Self, HashError> {
        let (name, rest) = text
            .split_once('-')
            .ok_or_else(|| HashError::MissingAlgorithm(truncate(text)))?;
        let a: Algorithm = name.parse()?;
        Self::parse_base64(rest, a).map_err(|_| bad(text, a))
    }

    /// Parses text with no prefix; the encoding is chosen by length (base16, nix32 or base64).
    pub fn parse_bare(text: &str, algo: Algorithm) -> Result<Self, HashError> {
        let size = algo.size();
        let bytes = text.as_bytes();
        let digest = if bytes.len() == size * 2 {
            HEXLOWER_PERMISSIVE.decode(bytes).ok()
        } else if bytes.len() == nixbase32::encoded_len(size) {
            nixbase32::decode(bytes).ok()
        } else if bytes.len() == size.div_ceil(3) * 4 {
            return Self::parse_base64(text, algo);
        } else {
            None
        };
        match digest {
            Some(d) => Self::from_digest(algo, &d),
            None => Err(bad(text, algo)),
        }
    }

    fn parse_base64(text: &str, algo: Algorithm) -> Result<Self, HashError> {
        let d = BASE64.decode(text.as_bytes()).map_err(|_| bad(text, algo))?;
        Self::from_digest(algo, &d).map_err(|_| bad(text, algo))
    }
}

fn bad(text: &str, algo: Algorithm) -> HashError {
    HashError::BadEncoding { text: truncate(text), algo }
}

fn check_expected(text: &str, got: Algorithm, want: Option<Algorithm>) -> Result<(), HashError> {
    match want {
        Some(w) if w != got => Err(HashError::WrongAlgorithm { text: truncate(text), expected: w }),
        _ => Ok(()),
    }
}

/// Lowercase hex of arbitrary bytes.
pub fn to_base16(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Padded base64 of arbitrary bytes.
pub fn to_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Folds a digest into `size` bytes by XOR, as Nix does to make the 160-bit hash of a store path.
pub fn compress(digest: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    if size == 0 {
        return out;
    }
    for (i, b) in digest.iter().enumerate() {
        out[i % size] ^= b;
    }
    out
}

/// An incremental hasher for any [`Algorithm`].
#[derive(Clone)]
pub enum Hasher {
    /// MD5 state.
    Md5(md5::Md5),
    /// SHA-1 state.
    Sha1(sha1::Sha1),
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algo: Algorithm) -> Self {
        match algo {
            Algorithm::Md5 => Self::Md5(md5::Md5::new()),
            Algorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The final hash.
    pub fn finish(self) -> Hash {
        let (algo, d): (Algorithm, Vec<u8>) = match self {
            Self::Md5(h) => (Algorithm::Md5, h.finalize().to_vec()),
            Self::Sha1(h) => (Algorithm::Sha1, h.finalize().to_vec()),
            Self::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Self::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        let mut digest = [0u8; 64];
        digest[..d.len()].copy_from_slice(&d);
        Hash { algo, digest }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that hashes what passes through and counts the bytes.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `algo`.
    pub fn new(inner: W, algo: Algorithm) -> Self {
        Self { inner, hasher: Hasher::new(algo), count: 0 }
    }

    /// The hash of everything written, the byte count, and the inner writer.
    pub fn finish(self) -> (Hash, u64, W) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ASDF_SHA256: &str = "f0e4c2f76c58916ec258f246851bea091d14d4247a2fc3e18694461b1816e13b";

    #[test]
    fn forms_of_one_hash() {
        let h = Hash::of(Algorithm::Sha256, b"asdf");
        assert_eq!(h.to_base16(), ASDF_SHA256);
        assert_eq!(h.to_sri(), "sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=");
        for enc in [Encoding::Base16, Encoding::Nix32, Encoding::Base64, Encoding::Sri] {
            let with = h.encode(enc, true);
            assert_eq!(Hash::parse_any(&with, None).unwrap(), h, "{with}");
            let bare = h.encode(enc, false);
            assert_eq!(Hash::parse_any(&bare, Some(Algorithm::Sha256)).unwrap(), h, "{bare}");
        }
    }

    #[test]
    fn golden_hash_json_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-master/hash");
        for name in ["sha256.json", "sha512.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let s: String = serde_json::from_str(&text).unwrap();
            let h = Hash::parse_sri(&s).unwrap();
            assert_eq!(h, Hash::of(Algorithm::Sha256, b"asdf"));
            assert_eq!(serde_json::to_value(h.to_sri()).unwrap(), serde_json::Value::String(s));
        }
        // BLAKE3 is an experimental algorithm in Nix and not one of ours: it must be refused.
        let text = std::fs::read_to_string(format!("{dir}/blake3.json")).unwrap();
        let s: String = serde_json::from_str(&text).unwrap();
        assert!(matches!(Hash::parse_sri(&s), Err(HashError::UnknownAlgorithm(_))));
    }

    #[test]
    fn errors() {
        assert!(matches!(Hash::parse_any("sha256:abc", None), Err(HashError::BadEncoding { .. })));
        assert!(matches!(Hash::parse_any(ASDF_SHA256, None), Err(HashError::MissingAlgorithm(_))));
        assert!(matches!(
            Hash::parse_any(&format!("sha256:{ASDF_SHA256}"), Some(Algorithm::Sha1)),
            Err(HashError::WrongAlgorithm { .. })
        ));
        assert!(matches!(Hash::parse_any("foo:abc", None), Err(HashError::UnknownAlgorithm(_))));
    }

    #[test]
    fn compression() {
        let h = Hash::of(Algorithm::Sha256, b"asdf");
        let c = compress(h.digest(), 20);
        for i in 0..20 {
            let mut x = h.digest()[i];
            if i + 20 < 32 {
                x ^= h.digest()[i + 20];
            }
            assert_eq!(c[i], x);
        }
    }

    proptest! {
        #[test]
        fn every_form_round_trips(data in proptest::collection::vec(any::<u8>(), 0..200), a in 0usize..4) {
            let h = Hash::of(Algorithm::ALL[a], &data);
            for enc in [Encoding::Base16, Encoding::Nix32, Encoding::Base64, Encoding::Sri] {
                prop_assert_eq!(Hash::parse_any(&h.encode(enc, true), None).unwrap(), h.clone());
            }
        }
    }
}
