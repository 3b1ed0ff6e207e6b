//! Realisations (`ca-derivations`): which store path a derivation output was built to.
//!
//! A derivation output is named by the derivation's hash modulo and the output name
//! ([`DrvOutput`]), written `sha256:<base16>!<output>`; a [`Realisation`] maps it to a store path,
//! with signatures and the realisations it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::hash::{Encoding, Hash, HashError};
use crate::store_path::StorePath;

/// The longest derivation output id text [`DrvOutput::parse`] reads.
pub const MAX_DRV_OUTPUT_LEN: usize = 4096;

/// Why a derivation output id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrvOutputError {
    /// There is no `!` between the hash and the output name.
    #[error("invalid derivation output id '{0}': no '!' before the output name")]
    MissingSeparator(String),
    /// The text is longer than [`MAX_DRV_OUTPUT_LEN`].
    #[error("derivation output id of {0} bytes is longer than the limit")]
    TooLong(usize),
    /// The hash part is not a hash that names its algorithm.
    #[error("invalid derivation output id: {0}")]
    Hash(#[from] HashError),
}

/// A derivation output: the derivation's hash modulo and the output's name. Ordered like Nix
/// orders them (hash, then name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrvOutput {
    /// The derivation's hash modulo (for fixed outputs, computed from the content address).
    pub drv_hash: Hash,
    /// The output's name, such as `out`.
    pub output_name: String,
}

impl DrvOutput {
    /// The hash as Nix stores it in the database and prints it in ids: `algo:<base16>`.
    pub fn hash_text(&self) -> String {
        self.drv_hash.encode(Encoding::Base16, true)
    }

    /// Parses `algo:<hash>!<output>` (the hash in any encoding Nix accepts with a prefix). The
    /// output name is everything after the first `!`, unchecked, as in Nix.
    pub fn parse(text: &str) -> Result<Self, DrvOutputError> {
        if text.len() > MAX_DRV_OUTPUT_LEN {
            return Err(DrvOutputError::TooLong(text.len()));
        }
        let (hash, name) = text
            .split_once('!')
            .ok_or_else(|| DrvOutputError::MissingSeparator(text.chars().take(100).collect()))?;
        Ok(Self { drv_hash: Hash::parse_prefixed(hash)?, output_name: name.to_owned() })
    }
}

impl fmt::Display for DrvOutput {
    /// `algo:<base16>!<output>`, Nix's `DrvOutput::to_string`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}", self.hash_text(), self.output_name)
    }
}

/// What a derivation output was built to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realisation {
    /// The derivation output.
    pub id: DrvOutput,
    /// The store path it was built to.
    pub out_path: StorePath,
    /// Signatures over the realisation, as text.
    pub signatures: BTreeSet<String>,
    /// The realisations this one needs, with the path each maps to.
    pub dependent_realisations: BTreeMap<DrvOutput, StorePath>,
}

impl Realisation {
    /// Nix's `isCompatibleWith`: same output path, and either the same dependencies or one side
    /// has none (a realisation from an older Nix that did not record them). Only meaningful for
    /// realisations of the same [`DrvOutput`].
    pub fn is_compatible_with(&self, other: &Realisation) -> bool {
        if self.out_path != other.out_path {
            return false;
        }
        self.dependent_realisations.is_empty() != other.dependent_realisations.is_empty()
            || self.dependent_realisations == other.dependent_realisations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Algorithm;
    use proptest::prelude::*;

    fn sample_hash() -> Hash {
        Hash::of(Algorithm::Sha256, b"drv")
    }

    #[test]
    fn prints_base16_with_algorithm() {
        let id = DrvOutput { drv_hash: sample_hash(), output_name: "out".into() };
        let text = id.to_string();
        assert_eq!(text, format!("sha256:{}!out", sample_hash().to_base16()));
        assert_eq!(DrvOutput::parse(&text), Ok(id));
    }

    #[test]
    fn accepts_other_hash_encodings() {
        let nix32 = format!("{}!dev", sample_hash());
        let parsed = DrvOutput::parse(&nix32).unwrap();
        assert_eq!(parsed.drv_hash, sample_hash());
        assert_eq!(parsed.output_name, "dev");
    }

    #[test]
    fn rejects_malformed_ids() {
        assert!(matches!(DrvOutput::parse("sha256:abc"), Err(DrvOutputError::MissingSeparator(_))));
        assert!(matches!(DrvOutput::parse("sha256:zz!out"), Err(DrvOutputError::Hash(_))));
        assert!(matches!(DrvOutput::parse("nohash!out"), Err(DrvOutputError::Hash(_))));
        let long = "a".repeat(MAX_DRV_OUTPUT_LEN + 1);
        assert_eq!(DrvOutput::parse(&long), Err(DrvOutputError::TooLong(MAX_DRV_OUTPUT_LEN + 1)));
    }

    #[test]
    fn compatibility_follows_nix() {
        let path = |s: &str| StorePath::from_base_name(&format!("{}-{s}", "0".repeat(32))).unwrap();
        let id = DrvOutput { drv_hash: sample_hash(), output_name: "out".into() };
        let dep = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"dep"), output_name: "out".into() };
        let base = Realisation {
            id: id.clone(),
            out_path: path("a"),
            signatures: BTreeSet::new(),
            dependent_realisations: BTreeMap::new(),
        };
        let mut with_dep = base.clone();
        with_dep.dependent_realisations.insert(dep.clone(), path("d"));
        let mut other_dep = base.clone();
        other_dep.dependent_realisations.insert(dep, path("e"));
        let mut other_path = base.clone();
        other_path.out_path = path("b");
        assert!(base.is_compatible_with(&base));
        assert!(base.is_compatible_with(&with_dep));
        assert!(with_dep.is_compatible_with(&base));
        assert!(!with_dep.is_compatible_with(&other_dep));
        assert!(!base.is_compatible_with(&other_path));
    }

    proptest! {
        #[test]
        fn drv_output_round_trips(digest in proptest::collection::vec(any::<u8>(), 32), name in "[a-zA-Z0-9!_.-]{0,40}") {
            let id = DrvOutput { drv_hash: Hash::from_digest(Algorithm::Sha256, &digest).unwrap(), output_name: name };
            prop_assert_eq!(DrvOutput::parse(&id.to_string()), Ok(id));
        }
    }
}
