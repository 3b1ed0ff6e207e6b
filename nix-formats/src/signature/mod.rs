//! Nix's Ed25519 signing keys and detached signatures, in their text forms.
//!
//! All three forms are `<name>:<base64>`:
//! - secret key: 64 bytes, the 32-byte seed followed by the 32-byte public key (libsodium's layout);
//! - public key: 32 bytes;
//! - signature: 64 bytes, an Ed25519 signature of the data by the key of that name.
//!
//! The name is everything before the first colon. Base64 is read as Nix reads it (see
//! [`base64`]) and always written padded. Signatures are deterministic (RFC 8032), so signing the
//! same data with the same key gives the same text as Nix.

pub mod base64;
mod trusted;

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

pub use trusted::{TrustedKeys, MAX_TRUSTED_KEYS};

/// Bytes in a secret key (seed and public key).
pub const SECRET_KEY_LEN: usize = 64;
/// Bytes in a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes in a signature.
pub const SIGNATURE_LEN: usize = 64;
/// The longest key or signature text accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// Which of the three text forms an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A secret key.
    SecretKey,
    /// A public key.
    PublicKey,
    /// A signature.
    Signature,
}

impl TextKind {
    fn expected_len(self) -> usize {
        match self {
            Self::SecretKey => SECRET_KEY_LEN,
            Self::PublicKey => PUBLIC_KEY_LEN,
            Self::Signature => SIGNATURE_LEN,
        }
    }
}

impl fmt::Display for TextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SecretKey => "secret key",
            Self::PublicKey => "public key",
            Self::Signature => "signature",
        })
    }
}

/// Errors from parsing keys and signatures, or from naming a new key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The text is longer than [`MAX_TEXT_LEN`].
    #[error("{kind} text is {len} bytes long, more than the limit of {MAX_TEXT_LEN}")]
    TooLong {
        /// What was parsed.
        kind: TextKind,
        /// Its length.
        len: usize,
    },
    /// There is no `:` between name and payload.
    #[error("{0} has no ':' between its name and its base64 payload")]
    MissingColon(TextKind),
    /// The name before the colon is empty.
    #[error("{0} has an empty name")]
    EmptyName(TextKind),
    /// The name contains whitespace, a control character or a colon.
    #[error("{kind} name {name:?} contains whitespace, a control character or ':'")]
    InvalidName {
        /// What was parsed.
        kind: TextKind,
        /// The name (shortened if long).
        name: String,
    },
    /// The payload is not base64.
    #[error("{kind} named '{name}' has a bad base64 payload: {source}")]
    BadBase64 {
        /// What was parsed.
        kind: TextKind,
        /// The key name.
        name: String,
        /// What is wrong with the base64.
        source: base64::Base64Error,
    },
    /// The payload decodes to the wrong number of bytes.
    #[error("{kind} named '{name}' has {got} bytes, expected {}", kind.expected_len())]
    WrongLength {
        /// What was parsed.
        kind: TextKind,
        /// The key name.
        name: String,
        /// The number of bytes decoded.
        got: usize,
    },
    /// A list of trusted keys has more than [`MAX_TRUSTED_KEYS`] entries.
    #[error("more than {MAX_TRUSTED_KEYS} trusted public keys")]
    TooManyKeys,
    /// The public half of a secret key is not the public key of its seed.
    #[error("secret key named '{0}' is corrupt: its public half does not belong to its seed")]
    MismatchedPublicHalf(String),
}

fn shorten(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Whether `name` may name a key: non-empty, with no whitespace, control characters or colons.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':')
}

/// Splits `name:payload` and decodes the payload to exactly `N` bytes.
fn parse_text<const N: usize>(kind: TextKind, text: &str) -> Result<(String, [u8; N]), SignatureError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(SignatureError::TooLong { kind, len: text.len() });
    }
    let (name, payload) = text.split_once(':').ok_or(SignatureError::MissingColon(kind))?;
    if name.is_empty() {
        return Err(SignatureError::EmptyName(kind));
    }
    if !is_valid_key_name(name) {
        return Err(SignatureError::InvalidName { kind, name: shorten(name) });
    }
    let bytes = decode_payload::<N>(kind, name, payload)?;
    Ok((name.to_owned(), bytes))
}

/// Decodes a base64 payload to exactly `N` bytes.
fn decode_payload<const N: usize>(kind: TextKind, name: &str, payload: &str) -> Result<[u8; N], SignatureError> {
    let decoded =
        base64::decode(payload).map_err(|source| SignatureError::BadBase64 { kind, name: shorten(name), source })?;
    <[u8; N]>::try_from(decoded.as_slice()).map_err(|_| SignatureError::WrongLength {
        kind,
        name: shorten(name),
        got: decoded.len(),
    })
}

/// A named Ed25519 secret key. Its `Debug` form hides the key material.
#[derive(Clone)]
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}:…)", self.name)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.key.to_bytes() == other.key.to_bytes()
    }
}

impl Eq for SecretKey {}

impl SecretKey {
    /// A fresh random key named `name`, from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, SignatureError> {
        Self::check_new_name(name)?;
        Ok(Self { name: name.to_owned(), key: SigningKey::generate(&mut rand_core::OsRng) })
    }

    /// The key named `name` with the 32-byte seed `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, SignatureError> {
        Self::check_new_name(name)?;
        Ok(Self { name: name.to_owned(), key: SigningKey::from_bytes(seed) })
    }

    fn check_new_name(name: &str) -> Result<(), SignatureError> {
        if name.is_empty() {
            return Err(SignatureError::EmptyName(TextKind::SecretKey));
        }
        if !is_valid_key_name(name) || name.len() > MAX_TEXT_LEN / 2 {
            return Err(SignatureError::InvalidName { kind: TextKind::SecretKey, name: shorten(name) });
        }
        Ok(())
    }

    /// Parses `name:base64(seed ‖ public key)`, checking that the public half matches the seed.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let (name, bytes) = parse_text::<SECRET_KEY_LEN>(TextKind::SecretKey, text)?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[..32]);
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes()[..] != bytes[32..] {
            return Err(SignatureError::MismatchedPublicHalf(shorten(&name)));
        }
        Ok(Self { name, key })
    }

    /// The text form `name:base64(seed ‖ public key)`. It holds the secret: handle it with care.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, base64::encode(&self.key.to_keypair_bytes()))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key with the same name.
    pub fn public(&self) -> PublicKey {
        PublicKey { name: self.name.clone(), bytes: self.key.verifying_key().to_bytes() }
    }

    /// Signs `data` (for store objects, their fingerprint) and names the signature after the key.
    pub fn sign(&self, data: &[u8]) -> Signature {
        Signature { name: self.name.clone(), bytes: self.key.sign(data).to_bytes() }
    }
}

impl FromStr for SecretKey {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, SignatureError> {
        Self::parse(s)
    }
}

/// A named Ed25519 public key. Any 32 bytes parse, as in Nix; bytes that are not a usable point
/// simply verify nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    name: String,
    bytes: [u8; PUBLIC_KEY_LEN],
}

impl fmt::Display for PublicKey {
    /// `name:base64(32 bytes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, base64::encode(&self.bytes))
    }
}

impl FromStr for PublicKey {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, SignatureError> {
        Self::parse(s)
    }
}

impl PublicKey {
    /// Parses `name:base64(32 bytes)`.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let (name, bytes) = parse_text::<PUBLIC_KEY_LEN>(TextKind::PublicKey, text)?;
        Ok(Self { name, bytes })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32 key bytes.
    pub fn bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Whether `signature` carries this key's name and is a valid signature of `data` by it.
    pub fn verify(&self, data: &[u8], signature: &Signature) -> bool {
        signature.name == self.name && self.verify_bytes(data, &signature.bytes)
    }

    /// Whether `signature` is a valid signature of `data` by this key, whatever name it carries.
    /// Verification is strict (canonical scalars, no small-order points), like libsodium's.
    pub fn verify_bytes(&self, data: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.bytes) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(data, &sig).is_ok()
    }
}

/// A detached signature, named after the key that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    name: String,
    bytes: [u8; SIGNATURE_LEN],
}

impl fmt::Display for Signature {
    /// `name:base64(64 bytes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, base64::encode(&self.bytes))
    }
}

impl FromStr for Signature {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, SignatureError> {
        Self::parse(s)
    }
}

impl Signature {
    /// Parses `name:base64(64 bytes)`.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let (name, bytes) = parse_text::<SIGNATURE_LEN>(TextKind::Signature, text)?;
        Ok(Self { name, bytes })
    }

    /// The name of the key that made it.
    pub fn key_name(&self) -> &str {
        &self.name
    }

    /// The 64 signature bytes.
    pub fn bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.bytes
    }
}

#[cfg(test)]
pub(crate) mod tests;
