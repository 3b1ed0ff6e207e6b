//! `.narinfo` files: a binary cache's description of one store object and of its (possibly
//! compressed) NAR file.
//!
//! The text form is one `Key: value` line per field, each ending in a line feed (see [`text`]);
//! the JSON form is the path-info JSON plus the cache fields (see [`json`]). Signatures are the
//! path-info signatures, made over the same fingerprint ([`ValidPathInfo::fingerprint`]).

pub mod json;
pub mod text;

use crate::hash::Hash;
use crate::path_info::{PathInfoError, ValidPathInfo};
use crate::signature::{SecretKey, Signature, TrustedKeys};
use crate::store_path::StoreDir;

pub use text::{NarInfoError, MAX_LINES, MAX_LINE_LEN, MAX_NARINFO_LEN};

/// The compression Nix assumes when a narinfo names none.
pub const DEFAULT_COMPRESSION: &str = "bzip2";

/// A binary cache's info about one store object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    /// The store object's metadata. Registration time and `ultimate` are not part of the text
    /// form (they stay 0 and false when parsed).
    pub info: ValidPathInfo,
    /// Where the NAR file is, relative to the cache (`URL`).
    pub url: String,
    /// How the NAR file is compressed: `none`, `xz`, `bzip2`, `zstd`, … (`Compression`).
    pub compression: String,
    /// The hash of the (compressed) NAR file (`FileHash`).
    pub file_hash: Option<Hash>,
    /// The size of the (compressed) NAR file in bytes (`FileSize`).
    pub file_size: Option<u64>,
    /// The system the object was built for; written by old Nix versions only (`System`).
    pub system: Option<String>,
}

impl NarInfo {
    /// A narinfo for `info` whose NAR file is at `url`, compressed with `compression`, with no
    /// file hash, file size or system.
    pub fn new(info: ValidPathInfo, url: impl Into<String>, compression: impl Into<String>) -> Self {
        Self { info, url: url.into(), compression: compression.into(), file_hash: None, file_size: None, system: None }
    }

    /// The file name of this narinfo in a cache: `<hash part>.narinfo`.
    pub fn file_name(&self) -> String {
        format!("{}.narinfo", self.info.path.hash_part())
    }

    /// The fingerprint its signatures sign (see [`ValidPathInfo::fingerprint`]).
    pub fn fingerprint(&self, store_dir: &StoreDir) -> Result<String, PathInfoError> {
        self.info.fingerprint(store_dir)
    }

    /// Signs the fingerprint with `key` and adds the signature (a `Sig` line).
    pub fn sign(&mut self, store_dir: &StoreDir, key: &SecretKey) -> Result<Signature, PathInfoError> {
        self.info.sign(store_dir, key)
    }

    /// Nix's signature check: [`crate::path_info::MAX_SIGS`] for a content-addressed object,
    /// else the number of `Sig` lines valid under `keys`.
    pub fn check_signatures(&self, store_dir: &StoreDir, keys: &TrustedKeys) -> Result<usize, PathInfoError> {
        self.info.check_signatures(store_dir, keys)
    }

    /// The number of `Sig` lines valid under `keys`, whether or not the object is
    /// content-addressed.
    pub fn count_valid_signatures(&self, store_dir: &StoreDir, keys: &TrustedKeys) -> Result<usize, PathInfoError> {
        self.info.count_valid_signatures(store_dir, keys)
    }
}

impl From<NarInfo> for ValidPathInfo {
    fn from(n: NarInfo) -> Self {
        n.info
    }
}

impl AsRef<ValidPathInfo> for NarInfo {
    fn as_ref(&self) -> &ValidPathInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests;
