//! Derivation outputs of content-addressed derivations: [`DrvOutput`] (`<algo>:<hex>!<output>`)
//! and [`Realisation`] (which store path an output was realised to), with Nix's compact JSON form.
//!
//! The JSON is what the worker and serve protocols carry inside a string and what binary caches
//! store in `realisations/<id>.doi`: an object with the keys `dependentRealisations`, `id`,
//! `outPath` and `signatures`, written without whitespace and with its keys sorted.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::hash::{Hash, HashError};
use crate::store_path::{StorePath, StorePathError};

/// The longest realisation JSON text [`Realisation::from_json`] accepts.
pub const MAX_JSON_LEN: usize = 16 << 20;

/// The longest derivation output id text [`DrvOutput::parse`] reads.
pub const MAX_DRV_OUTPUT_LEN: usize = 4096;

/// Errors from parsing [`DrvOutput`]s and [`Realisation`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealisationError {
    /// A derivation output id without `!`.
    #[error("invalid derivation output id '{0}'")]
    NoSeparator(String),
    /// A derivation output id longer than [`MAX_DRV_OUTPUT_LEN`].
    #[error("derivation output id of {0} bytes is longer than the limit")]
    TooLong(usize),
    /// The hash part of a derivation output id is malformed.
    #[error("invalid hash in derivation output id: {0}")]
    Hash(#[from] HashError),
    /// The text is not JSON, or is too long.
    #[error("realisation is not valid JSON: {0}")]
    Json(String),
    /// A required field is missing.
    #[error("realisation is missing field '{0}'")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("realisation field '{0}' has the wrong type")]
    WrongType(&'static str),
    /// A store path base name is malformed.
    #[error(transparent)]
    StorePath(#[from] StorePathError),
}

/// One output of a derivation, identified by the derivation's hash modulo and the output's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DrvOutput {
    /// The derivation's hash modulo (SHA-256 in practice).
    pub drv_hash: Hash,
    /// The output's name.
    pub output_name: String,
}

impl DrvOutput {
    /// The hash as Nix stores it in the database and prints it in ids: `algo:<base16>`.
    pub fn hash_text(&self) -> String {
        format!("{}:{}", self.drv_hash.algorithm(), self.drv_hash.to_base16())
    }

    /// Parses `<algo>:<hash>!<output>` (the hash may also be SRI), splitting at the first `!`.
    /// The output name is everything after it, unchecked, as in Nix.
    pub fn parse(text: &str) -> Result<Self, RealisationError> {
        if text.len() > MAX_DRV_OUTPUT_LEN {
            return Err(RealisationError::TooLong(text.len()));
        }
        let (hash, name) = text.split_once('!').ok_or_else(|| RealisationError::NoSeparator(short(text)))?;
        Ok(Self { drv_hash: Hash::parse_prefixed(hash)?, output_name: name.to_owned() })
    }
}

impl fmt::Display for DrvOutput {
    /// `<algo>:<lowercase hex>!<output>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}", self.hash_text(), self.output_name)
    }
}

impl Ord for DrvOutput {
    /// Nix's order: digest length, then digest bytes, then algorithm, then output name.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.drv_hash, &other.drv_hash);
        a.digest()
            .len()
            .cmp(&b.digest().len())
            .then_with(|| a.digest().cmp(b.digest()))
            .then_with(|| a.algorithm().cmp(&b.algorithm()))
            .then_with(|| self.output_name.cmp(&other.output_name))
    }
}

impl PartialOrd for DrvOutput {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a derivation output was realised, with signatures and the realisations it depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Realisation {
    /// The output this realises.
    pub id: DrvOutput,
    /// The store path it was realised to.
    pub out_path: StorePath,
    /// Signatures, as text.
    pub signatures: BTreeSet<String>,
    /// The realisations this one requires, with the paths they must map to.
    pub dependent_realisations: BTreeMap<DrvOutput, StorePath>,
}

impl Realisation {
    /// A realisation of `id` at `out_path`, with no signatures and no dependencies.
    pub fn new(id: DrvOutput, out_path: StorePath) -> Self {
        Self { id, out_path, signatures: BTreeSet::new(), dependent_realisations: BTreeMap::new() }
    }

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

    /// Nix's compact JSON: no whitespace, keys sorted, store paths as base names.
    pub fn to_json(&self) -> String {
        self.json_object(true)
    }

    /// The text Nix signs: the JSON without the `signatures` key.
    pub fn fingerprint(&self) -> String {
        self.json_object(false)
    }

    fn json_object(&self, with_signatures: bool) -> String {
        // Object keys sorted by their text, as Nix's JSON library keeps them.
        let deps: BTreeMap<String, String> =
            self.dependent_realisations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut out = String::from("{\"dependentRealisations\":{");
        for (i, (k, v)) in deps.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, k);
            out.push(':');
            push_json_string(&mut out, v);
        }
        out.push_str("},\"id\":");
        push_json_string(&mut out, &self.id.to_string());
        out.push_str(",\"outPath\":");
        push_json_string(&mut out, &self.out_path.to_string());
        if with_signatures {
            out.push_str(",\"signatures\":[");
            for (i, s) in self.signatures.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, s);
            }
            out.push(']');
        }
        out.push('}');
        out
    }

    /// Parses the JSON form. `id` and `outPath` are required; `signatures` and
    /// `dependentRealisations` may be absent. Other keys are ignored, as Nix does.
    pub fn from_json(text: &str) -> Result<Self, RealisationError> {
        if text.len() > MAX_JSON_LEN {
            return Err(RealisationError::Json(format!("longer than {MAX_JSON_LEN} bytes")));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| RealisationError::Json(e.to_string()))?;
        let obj = value.as_object().ok_or(RealisationError::WrongType("<root>"))?;
        let string_field = |key: &'static str| -> Result<&str, RealisationError> {
            obj.get(key)
                .ok_or(RealisationError::MissingField(key))?
                .as_str()
                .ok_or(RealisationError::WrongType(key))
        };
        let id = DrvOutput::parse(string_field("id")?)?;
        let out_path = StorePath::from_base_name(string_field("outPath")?)?;
        let mut signatures = BTreeSet::new();
        if let Some(sigs) = obj.get("signatures") {
            for s in sigs.as_array().ok_or(RealisationError::WrongType("signatures"))? {
                signatures.insert(s.as_str().ok_or(RealisationError::WrongType("signatures"))?.to_owned());
            }
        }
        let mut dependent_realisations = BTreeMap::new();
        if let Some(deps) = obj.get("dependentRealisations") {
            let deps = deps.as_object().ok_or(RealisationError::WrongType("dependentRealisations"))?;
            for (k, v) in deps {
                let path = v.as_str().ok_or(RealisationError::WrongType("dependentRealisations"))?;
                dependent_realisations.insert(DrvOutput::parse(k)?, StorePath::from_base_name(path)?);
            }
        }
        Ok(Self { id, out_path, signatures, dependent_realisations })
    }
}

/// Appends `s` as a JSON string literal, escaped as Nix's JSON library does (which is also how
/// `serde_json` escapes: `\"`, `\\`, the short forms of `\b \f \n \r \t`, other control
/// characters as `\u00XX`, everything else verbatim).
fn push_json_string(out: &mut String, s: &str) {
    // Serialising a string slice cannot fail; fall back to an empty literal to stay panic-free.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Algorithm;

    const H1_HEX: &str = "15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527";
    const FOO: &str = "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo";

    fn h1() -> Hash {
        Hash::parse_bare(H1_HEX, Algorithm::Sha256).unwrap()
    }

    #[test]
    fn drv_output_text() {
        let d = DrvOutput::parse(&format!("sha256:{H1_HEX}!baz")).unwrap();
        assert_eq!(d.drv_hash, h1());
        assert_eq!(d.output_name, "baz");
        assert_eq!(d.to_string(), format!("sha256:{H1_HEX}!baz"));
        // SRI and nix32 are accepted too, and printed back as hex.
        let sri = DrvOutput::parse(&format!("{}!baz", h1().to_sri())).unwrap();
        assert_eq!(sri, d);
        assert!(matches!(DrvOutput::parse("sha256:abc"), Err(RealisationError::NoSeparator(_))));
        assert!(matches!(DrvOutput::parse("sha256:abc!x"), Err(RealisationError::Hash(_))));
    }

    #[test]
    fn json_matches_nix() {
        let mut r = Realisation::new(
            DrvOutput { drv_hash: h1(), output_name: "baz".into() },
            StorePath::from_base_name(FOO).unwrap(),
        );
        r.signatures = ["qwer".to_owned(), "asdf".to_owned()].into();
        let expected = format!(
            "{{\"dependentRealisations\":{{}},\"id\":\"sha256:{H1_HEX}!baz\",\"outPath\":\"{FOO}\",\"signatures\":[\"asdf\",\"qwer\"]}}"
        );
        assert_eq!(r.to_json(), expected);
        assert_eq!(Realisation::from_json(&expected).unwrap(), r);
        assert!(!r.fingerprint().contains("signatures"));
    }

    #[test]
    fn json_rejects() {
        assert!(matches!(Realisation::from_json("[]"), Err(RealisationError::WrongType(_))));
        assert!(matches!(Realisation::from_json("{}"), Err(RealisationError::MissingField("id"))));
        assert!(matches!(Realisation::from_json("{"), Err(RealisationError::Json(_))));
        let bad_path = format!("{{\"id\":\"sha256:{H1_HEX}!x\",\"outPath\":\"nope\"}}");
        assert!(matches!(Realisation::from_json(&bad_path), Err(RealisationError::StorePath(_))));
        let bad_sig = format!("{{\"id\":\"sha256:{H1_HEX}!x\",\"outPath\":\"{FOO}\",\"signatures\":[1]}}");
        assert!(matches!(Realisation::from_json(&bad_sig), Err(RealisationError::WrongType("signatures"))));
    }

    #[test]
    fn escapes_like_nix() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"\\\n\u{1}\u{7f}é/");
        assert_eq!(s, "\"a\\\"\\\\\\n\\u0001\u{7f}é/\"");
    }

    #[test]
    fn order_is_by_digest_then_name() {
        let a = DrvOutput { drv_hash: Hash::of(Algorithm::Sha1, b"x"), output_name: "z".into() };
        let b = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"x"), output_name: "a".into() };
        assert!(a < b, "shorter digests sort first");
        let c = DrvOutput { drv_hash: h1(), output_name: "a".into() };
        let d = DrvOutput { drv_hash: h1(), output_name: "b".into() };
        assert!(c < d);
    }
}
