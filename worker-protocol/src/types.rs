//! Plain data types that belong to the protocols themselves. The store-level types they carry
//! (store paths, path infos, build results, derived paths, realisations) come from `nix-formats`.

use std::collections::BTreeSet;

use nix_formats::content_address::ContentAddress;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

/// How a build request treats outputs that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BuildMode {
    /// Build what is missing (0).
    #[default]
    Normal,
    /// Rebuild or re-substitute, replacing corrupt outputs (1).
    Repair,
    /// Build again and compare with the existing outputs (2).
    Check,
}

impl BuildMode {
    /// The number on the wire.
    pub fn code(self) -> u64 {
        match self {
            Self::Normal => 0,
            Self::Repair => 1,
            Self::Check => 2,
        }
    }

    /// The mode for a wire number, if it is one.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::Normal),
            1 => Some(Self::Repair),
            2 => Some(Self::Check),
            _ => None,
        }
    }
}

/// Whether the daemon trusts the client. On the wire it is always optional:
/// 0 = unknown, 1 = [`TrustedFlag::Trusted`], 2 = [`TrustedFlag::NotTrusted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustedFlag {
    /// The client is trusted.
    Trusted,
    /// The client is not trusted.
    NotTrusted,
}

/// What the daemon tells the client at the end of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHandshakeInfo {
    /// The daemon's Nix version string (sent from worker 1.33; required when sending then).
    pub daemon_nix_version: Option<String>,
    /// Whether the daemon trusts the client (sent from worker 1.35; `None` means unknown).
    pub remote_trusts_us: Option<TrustedFlag>,
}

/// The build settings a serve-protocol client sends with a build request.
///
/// Fields that arrived with later versions are `None` when decoded at a version that lacks them;
/// when encoded at a version that has them, `None` is sent as 0 (or false).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// Seconds without output before the build is killed (0 = no limit).
    pub max_silent_time: u64,
    /// Seconds before the build is killed (0 = no limit).
    pub build_timeout: u64,
    /// The largest build log in bytes (serve 2.2 on).
    pub max_log_size: Option<u64>,
    /// How many times to repeat the build (serve 2.3 on).
    pub nr_repeats: Option<u64>,
    /// Whether differing repeats fail the build (serve 2.3 on).
    pub enforce_determinism: Option<bool>,
    /// Whether to keep the build directory of a failed build (serve 2.7 on).
    pub keep_failed: Option<bool>,
}

/// A path info without its store path: what `QueryPathInfo` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnkeyedValidPathInfo {
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// The SHA-256 of its NAR serialisation. The serve protocol before 2.4 does not send it, and
    /// decoding gives [`UnkeyedValidPathInfo::unknown_nar_hash`] then.
    pub nar_hash: Hash,
    /// The store paths it refers to.
    pub references: BTreeSet<StorePath>,
    /// When it was registered, in seconds since the epoch (0 if unknown).
    pub registration_time: u64,
    /// The size of its NAR serialisation in bytes.
    pub nar_size: u64,
    /// Whether it was built locally.
    pub ultimate: bool,
    /// Its signatures, as text.
    pub sigs: BTreeSet<String>,
    /// Its content address, if it has one.
    pub ca: Option<ContentAddress>,
}

impl UnkeyedValidPathInfo {
    /// An info with NAR hash `nar_hash` and every other field empty, zero or false.
    pub fn new(nar_hash: Hash) -> Self {
        Self {
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

    /// The placeholder for a NAR hash that was not sent: SHA-256 with an all-zero digest (Nix's
    /// `Hash::dummy`).
    pub fn unknown_nar_hash() -> Hash {
        Hash::zero(Algorithm::Sha256)
    }

    /// Adds the store path.
    pub fn with_path(self, path: StorePath) -> ValidPathInfo {
        ValidPathInfo {
            path,
            deriver: self.deriver,
            nar_hash: self.nar_hash,
            references: self.references,
            registration_time: self.registration_time,
            nar_size: self.nar_size,
            ultimate: self.ultimate,
            sigs: self.sigs,
            ca: self.ca,
        }
    }

    /// Splits a keyed info into its path and the rest.
    pub fn split(info: ValidPathInfo) -> (StorePath, Self) {
        let unkeyed = Self {
            deriver: info.deriver,
            nar_hash: info.nar_hash,
            references: info.references,
            registration_time: info.registration_time,
            nar_size: info.nar_size,
            ultimate: info.ultimate,
            sigs: info.sigs,
            ca: info.ca,
        };
        (info.path, unkeyed)
    }
}
