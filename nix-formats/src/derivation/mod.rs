//! Store derivations (`.drv` files) as Nix 2.26 has them: the types, their ATerm text form, their
//! JSON form (`nix derivation show`), `hashDerivationModulo` and the output paths that follow.
//!
//! Strings that come from the Nix language (system, builder, arguments, environment) are byte
//! strings: Nix does not require them to be UTF-8, and a `.drv` may hold any bytes in them. Output
//! names, store paths and hashes are text.
//!
//! The submodules each have one job:
//! - [`aterm_parse`]: the strict ATerm reader, with limits;
//! - [`aterm_print`]: the ATerm writer (also used for hashing);
//! - [`kind`]: which kind of derivation the outputs make ([`DerivationType`]);
//! - [`hashing`]: `hashDerivationModulo`, filling in and checking output paths;
//! - [`json`]: the JSON form of `nix derivation show` and `nix derivation add`.

pub mod aterm_parse;
pub mod aterm_print;
pub mod hashing;
pub mod json;
pub mod kind;

#[cfg(test)]
pub(crate) mod strategies;

use std::collections::{BTreeMap, BTreeSet};

use crate::content_address::{ContentAddress, Method, MethodAlgo};
use crate::hash::{Algorithm, Hash};
use crate::store_path::{output_path_name, StoreDir, StorePath, StorePathError};

pub use aterm_parse::{AtermError, AtermErrorKind, AtermLimits};
pub use hashing::{
    check_output_paths, fill_output_paths, hash_derivation_modulo, hash_placeholder, DerivationReader,
    DirectoryReader, DrvHash, DrvHashCache, DrvHashKind, HashModuloError, OutputCheckError,
};
pub use json::{derivation_show_json, DerivationJsonError};
pub use kind::{DerivationType, DerivationTypeError};

/// The file name extension of store derivations.
pub const DRV_EXTENSION: &str = ".drv";

/// One output of a derivation, as declared in the `.drv`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DerivationOutput {
    /// Input-addressed: the path is fixed in advance from the derivation's hash.
    InputAddressed(StorePath),
    /// Fixed-output: the content address is known in advance; the path follows from it, the
    /// derivation name and the output name (see [`DerivationOutput::path`]).
    CaFixed(ContentAddress),
    /// Floating content-addressed (`ca-derivations`): the method and algorithm are known, the path
    /// only after the build.
    CaFloating(MethodAlgo),
    /// Input-addressed, but the path cannot be known yet because an input is not (floating CA or
    /// impure inputs). Also what an output is before its path is filled in.
    Deferred,
    /// Impure (`impure-derivations`): content-addressed after the build, never reused.
    Impure(MethodAlgo),
}

impl DerivationOutput {
    /// The output's path, where it is known before the build: the stated path of an
    /// input-addressed output, the computed path of a fixed output, otherwise `None`.
    pub fn path(&self, store_dir: &StoreDir, drv_name: &str, output_name: &str) -> Result<Option<StorePath>, OutputPathError> {
        match self {
            DerivationOutput::InputAddressed(path) => Ok(Some(path.clone())),
            DerivationOutput::CaFixed(ca) => fixed_output_path(store_dir, ca, drv_name, output_name).map(Some),
            DerivationOutput::CaFloating(_) | DerivationOutput::Deferred | DerivationOutput::Impure(_) => Ok(None),
        }
    }
}

/// The path of a fixed output: Nix's `makeFixedOutputPathFromCA` without references, for the name
/// `<drv name>` (output `out`) or `<drv name>-<output>`.
pub fn fixed_output_path(
    store_dir: &StoreDir,
    ca: &ContentAddress,
    drv_name: &str,
    output_name: &str,
) -> Result<StorePath, OutputPathError> {
    ca.store_path(store_dir, &output_path_name(drv_name, output_name), [], false)
        .map_err(|source| OutputPathError { output: output_name.to_owned(), source })
}

/// An output whose path cannot be computed (for example because the name it would get is not a
/// valid store path name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute the path of output '{output}': {source}")]
pub struct OutputPathError {
    /// The output's name.
    pub output: String,
    /// Why the path could not be made.
    pub source: StorePathError,
}

/// Why the store path of a `.drv` file cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrvPathError {
    /// An output's path (needed in the ATerm) cannot be computed.
    #[error(transparent)]
    Output(#[from] OutputPathError),
    /// `<name>.drv` is not a valid store path name.
    #[error("invalid derivation name: {0}")]
    Name(#[from] StorePathError),
}

/// What a derivation needs from one input derivation: a set of its outputs, and (with dynamic
/// derivations) outputs of derivations that its outputs are. Nix's `DerivedPathMap<StringSet>`
/// child node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InputOutputs {
    /// The outputs needed directly.
    pub outputs: BTreeSet<String>,
    /// For an output that is itself a derivation: what is needed from it (`xp-dyn-drv` only).
    pub dynamic_outputs: BTreeMap<String, InputOutputs>,
}

impl InputOutputs {
    /// Needs exactly `outputs`, with no dynamic outputs.
    pub fn of<I, S>(outputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { outputs: outputs.into_iter().map(Into::into).collect(), dynamic_outputs: BTreeMap::new() }
    }
}

/// A store derivation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    /// The derivation's name: the `.drv` file's name without the hash part and `.drv`. It is not
    /// stored in the ATerm; the caller supplies it.
    pub name: String,
    /// Outputs by name.
    pub outputs: BTreeMap<String, DerivationOutput>,
    /// Input derivations and what is needed from each.
    pub input_drvs: BTreeMap<StorePath, InputOutputs>,
    /// Input sources (store paths that are not derivation outputs).
    pub input_srcs: BTreeSet<StorePath>,
    /// The system type, such as `x86_64-linux`. ("platform" in Nix's sources.)
    pub system: Vec<u8>,
    /// The builder program.
    pub builder: Vec<u8>,
    /// The builder's arguments.
    pub args: Vec<Vec<u8>>,
    /// The builder's environment.
    pub env: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Derivation {
    /// The derivation name of a `.drv` store path: its name without `.drv`. `None` if the path is
    /// not a derivation.
    pub fn name_from_path(drv_path: &StorePath) -> Option<&str> {
        drv_path.name().strip_suffix(DRV_EXTENSION)
    }

    /// Whether any input derivation entry uses dynamic outputs (which makes the ATerm use the
    /// `DrvWithVersion("xp-dyn-drv",…)` form).
    pub fn has_dynamic_inputs(&self) -> bool {
        self.input_drvs.values().any(|node| !node.dynamic_outputs.is_empty())
    }

    /// Whether the builder is built into Nix (`builtin:…`).
    pub fn is_builtin(&self) -> bool {
        self.builder.starts_with(b"builtin:")
    }

    /// The path of each output, where it is known before the build (see
    /// [`DerivationOutput::path`]).
    pub fn output_paths(&self, store_dir: &StoreDir) -> Result<BTreeMap<String, Option<StorePath>>, OutputPathError> {
        self.outputs
            .iter()
            .map(|(name, output)| Ok((name.clone(), output.path(store_dir, &self.name, name)?)))
            .collect()
    }

    /// The references a `.drv` file of this derivation has: the input sources and the input
    /// derivations (outputs are not references).
    pub fn references(&self) -> BTreeSet<StorePath> {
        let mut refs = self.input_srcs.clone();
        refs.extend(self.input_drvs.keys().cloned());
        refs
    }

    /// The store path that this derivation's `.drv` file gets (Nix's `writeDerivation`): a text
    /// path named `<name>.drv` over the ATerm, with the inputs as references.
    pub fn drv_path(&self, store_dir: &StoreDir) -> Result<StorePath, DrvPathError> {
        let aterm = self.to_aterm(store_dir)?;
        let hash = Hash::of(Algorithm::Sha256, &aterm);
        let name = format!("{}{DRV_EXTENSION}", self.name);
        Ok(store_dir.make_text_path(&name, &hash, &self.references())?)
    }

    /// The experimental features Nix 2.26 requires to read this derivation:
    /// `ca-derivations` (floating outputs), `impure-derivations` (impure outputs) and
    /// `dynamic-derivations` (text-hashed outputs or dynamic inputs). Sorted, no duplicates.
    pub fn required_experimental_features(&self) -> Vec<&'static str> {
        let mut features = BTreeSet::new();
        for output in self.outputs.values() {
            match output {
                DerivationOutput::CaFloating(ma) => {
                    features.insert("ca-derivations");
                    if ma.method == Method::Text {
                        features.insert("dynamic-derivations");
                    }
                }
                DerivationOutput::Impure(ma) => {
                    features.insert("impure-derivations");
                    if ma.method == Method::Text {
                        features.insert("dynamic-derivations");
                    }
                }
                DerivationOutput::CaFixed(ca) if ca.method == Method::Text => {
                    features.insert("dynamic-derivations");
                }
                _ => {}
            }
        }
        if self.has_dynamic_inputs() {
            features.insert("dynamic-derivations");
        }
        features.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_from_path() {
        let p = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv").unwrap();
        assert_eq!(Derivation::name_from_path(&p), Some("foo"));
        let q = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo").unwrap();
        assert_eq!(Derivation::name_from_path(&q), None);
    }

    #[test]
    fn features() {
        let mut drv = Derivation { name: "x".into(), ..Default::default() };
        assert!(drv.required_experimental_features().is_empty());
        drv.outputs.insert(
            "out".into(),
            DerivationOutput::CaFloating(MethodAlgo { method: Method::Text, algo: Algorithm::Sha256 }),
        );
        assert_eq!(drv.required_experimental_features(), ["ca-derivations", "dynamic-derivations"]);
        drv.outputs.insert("out".into(), DerivationOutput::Impure(MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 }));
        assert_eq!(drv.required_experimental_features(), ["impure-derivations"]);
    }
}

#[cfg(test)]
mod round_trips {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn aterm_round_trip(drv in strategies::derivation(false)) {
            let sd = StoreDir::default();
            let text = drv.to_aterm(&sd).unwrap();
            let back = Derivation::parse_aterm(&text, &drv.name, &sd).unwrap();
            prop_assert_eq!(&back, &drv);
            prop_assert_eq!(back.to_aterm(&sd).unwrap(), text);
        }

        #[test]
        fn json_round_trip(drv in strategies::derivation(true)) {
            let sd = StoreDir::new("/some/other/store");
            let json = drv.to_json(&sd).unwrap();
            let back = Derivation::from_json(&json, &sd).unwrap();
            prop_assert_eq!(&back, &drv);
            let text = derivation_show_json([("k".to_owned(), &drv)], &sd).unwrap();
            let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&reparsed["k"], &json);
        }

        #[test]
        fn aterm_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Derivation::parse_aterm(&bytes, "x", &StoreDir::default());
        }

        #[test]
        fn aterm_parser_survives_mutations(
            drv in strategies::derivation(false),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let sd = StoreDir::default();
            let mut text = drv.to_aterm(&sd).unwrap();
            let i = at.index(text.len());
            text[i] = byte;
            if let Ok(back) = Derivation::parse_aterm(&text, &drv.name, &sd) {
                // Whatever is accepted prints back to something that parses to the same value.
                let again = back.to_aterm(&sd).unwrap();
                prop_assert_eq!(Derivation::parse_aterm(&again, &drv.name, &sd).unwrap(), back);
            }
        }
    }
}
