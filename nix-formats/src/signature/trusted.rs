//! A set of trusted public keys, looked up by name, that checks signature strings as Nix does.

use std::collections::BTreeMap;

use super::{decode_payload, PublicKey, SignatureError, TextKind, SIGNATURE_LEN};

/// The most keys [`TrustedKeys::parse_list`] accepts.
pub const MAX_TRUSTED_KEYS: usize = 1024;

/// Public keys by name, like Nix's `trusted-public-keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PublicKey>,
}

impl TrustedKeys {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` unless a key of that name is already present (the first one wins, as in Nix).
    /// Returns whether it was added.
    pub fn insert(&mut self, key: PublicKey) -> bool {
        if self.keys.contains_key(key.name()) {
            return false;
        }
        self.keys.insert(key.name().to_owned(), key);
        true
    }

    /// Parses a whitespace-separated list of public keys, the form of the `trusted-public-keys`
    /// setting. At most [`MAX_TRUSTED_KEYS`] keys are read; more is an error.
    pub fn parse_list(text: &str) -> Result<Self, SignatureError> {
        let mut set = Self::new();
        for (i, word) in text.split_whitespace().enumerate() {
            if i >= MAX_TRUSTED_KEYS {
                return Err(SignatureError::TooManyKeys);
            }
            set.insert(PublicKey::parse(word)?);
        }
        Ok(set)
    }

    /// The key named `name`.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.get(name)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }

    /// Checks one signature string over `data`, with Nix's `verifyDetached` rules:
    /// - a string without a colon, with an empty name, or whose name is not trusted is simply not
    ///   a valid signature: `Ok(false)`;
    /// - for a trusted name, a payload that is not base64 of 64 bytes is an error (Nix throws
    ///   "signature is not valid");
    /// - otherwise the result is whether the signature verifies.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<bool, SignatureError> {
        let Some((name, payload)) = signature.split_once(':') else {
            return Ok(false);
        };
        let Some(key) = self.keys.get(name) else {
            return Ok(false);
        };
        let bytes = decode_payload::<SIGNATURE_LEN>(TextKind::Signature, name, payload)?;
        Ok(key.verify_bytes(data, &bytes))
    }

    /// How many of `signatures` are valid signatures of `data` by trusted keys. The first
    /// malformed signature of a trusted name is an error, as in Nix.
    pub fn count_valid<I>(&self, data: &[u8], signatures: I) -> Result<usize, SignatureError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut good = 0;
        for sig in signatures {
            if self.verify(data, sig.as_ref())? {
                good += 1;
            }
        }
        Ok(good)
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    fn from_iter<T: IntoIterator<Item = PublicKey>>(iter: T) -> Self {
        let mut set = Self::new();
        for key in iter {
            set.insert(key);
        }
        set
    }
}

impl Extend<PublicKey> for TrustedKeys {
    fn extend<T: IntoIterator<Item = PublicKey>>(&mut self, iter: T) {
        for key in iter {
            self.insert(key);
        }
    }
}
