//! What the store knows about a valid store object: [`ValidPathInfo`], its signing fingerprint,
//! signing and signature checks, and its JSON forms (see [`json`]).

pub mod json;
#[cfg(test)]
pub(crate) mod strategies;

use std::collections::BTreeSet;

use crate::content_address::{ContentAddress, Method};
use crate::hash::Hash;
use crate::signature::{SecretKey, Signature, SignatureError, TrustedKeys};
use crate::store_path::{StoreDir, StorePath};

pub use json::{JsonError, JsonOptions};

/// What [`ValidPathInfo::check_signatures`] counts for a content-addressed object: it needs no
/// signatures, so it passes any threshold (Nix's `maxSigs`).
pub const MAX_SIGS: usize = usize::MAX;

/// Errors from computing fingerprints and checking signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathInfoError {
    /// The NAR size is 0 (unknown), so there is no fingerprint to sign or check.
    #[error("cannot calculate fingerprint of path '{0}' because its size is not known")]
    UnknownNarSize(String),
    /// A signature string names a trusted key but is malformed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// A valid store object's metadata, as the store database and the protocols carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPathInfo {
    /// The store path.
    pub path: StorePath,
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// The hash of its NAR serialisation (SHA-256 in practice).
    pub nar_hash: Hash,
    /// The store paths it refers to, possibly including itself, in Nix's order.
    pub references: BTreeSet<StorePath>,
    /// When it was registered, in seconds since the epoch; 0 means unknown.
    pub registration_time: u64,
    /// The size of its NAR serialisation in bytes; 0 means unknown.
    pub nar_size: u64,
    /// Whether it was built locally ("ultimately trusted").
    pub ultimate: bool,
    /// Its signatures, as text (not necessarily well-formed).
    pub sigs: BTreeSet<String>,
    /// Its content address, if it claims one.
    pub ca: Option<ContentAddress>,
}

impl ValidPathInfo {
    /// An info for `path` with NAR hash `nar_hash` and every other field empty, zero or false.
    pub fn new(path: StorePath, nar_hash: Hash) -> Self {
        Self {
            path,
            deriver: None,
            nar_hash,
            references: BTreeSet::new(),
            registration_time: 0,
            nar_size: 0,
            ultimate: false,
            sigs: BTreeSet::new(),
            ca: None,
        }
    }

    /// The text Nix signs: `1;<path>;<algo>:<nix32 NAR hash>;<NAR size>;<references>`, with full
    /// paths and the references sorted and joined by commas. Nix refuses when the NAR size is 0;
    /// it does not check the hash algorithm (in practice always SHA-256).
    pub fn fingerprint(&self, store_dir: &StoreDir) -> Result<String, PathInfoError> {
        if self.nar_size == 0 {
            return Err(PathInfoError::UnknownNarSize(store_dir.print(&self.path)));
        }
        let refs: Vec<String> = self.references.iter().map(|r| store_dir.print(r)).collect();
        Ok(format!("1;{};{};{};{}", store_dir.print(&self.path), self.nar_hash, self.nar_size, refs.join(",")))
    }

    /// Signs the fingerprint with `key`, adds the signature to [`Self::sigs`] and returns it.
    pub fn sign(&mut self, store_dir: &StoreDir, key: &SecretKey) -> Result<Signature, PathInfoError> {
        let sig = key.sign(self.fingerprint(store_dir)?.as_bytes());
        self.sigs.insert(sig.to_string());
        Ok(sig)
    }

    /// Whether one signature string is valid for this object under `keys` (Nix's
    /// `checkSignature`; see [`TrustedKeys::verify`] for unknown and malformed signatures).
    pub fn check_signature(&self, store_dir: &StoreDir, keys: &TrustedKeys, sig: &str) -> Result<bool, PathInfoError> {
        Ok(keys.verify(self.fingerprint(store_dir)?.as_bytes(), sig)?)
    }

    /// Nix's `checkSignatures`: [`MAX_SIGS`] if the object is content-addressed (its path proves
    /// its contents), else the number of its signatures valid under `keys`.
    pub fn check_signatures(&self, store_dir: &StoreDir, keys: &TrustedKeys) -> Result<usize, PathInfoError> {
        if self.is_content_addressed(store_dir) {
            return Ok(MAX_SIGS);
        }
        self.count_valid_signatures(store_dir, keys)
    }

    /// The number of signatures valid under `keys`, without the content-address shortcut of
    /// [`Self::check_signatures`]. With no signatures at all this is 0 even if the NAR size is
    /// unknown.
    pub fn count_valid_signatures(&self, store_dir: &StoreDir, keys: &TrustedKeys) -> Result<usize, PathInfoError> {
        if self.sigs.is_empty() {
            return Ok(0);
        }
        Ok(keys.count_valid(self.fingerprint(store_dir)?.as_bytes(), &self.sigs)?)
    }

    /// Whether the object has a content address and its path is the one that address gives for
    /// its name and references (a reference to itself counts as a self-reference). A text
    /// address with a self-reference is never valid.
    pub fn is_content_addressed(&self, store_dir: &StoreDir) -> bool {
        let Some(ca) = &self.ca else {
            return false;
        };
        let self_ref = self.references.contains(&self.path);
        if self_ref && ca.method == Method::Text {
            return false;
        }
        let others = self.references.iter().filter(|r| **r != self.path);
        match ca.store_path(store_dir, self.path.name(), others, self_ref) {
            Ok(p) => p == self.path,
            Err(_) => false,
        }
    }

    /// The references as base names (`<hash>-<name>`), in order.
    pub fn short_refs(&self) -> Vec<String> {
        self.references.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests;
