//! The kind of a derivation, as its outputs make it (Nix's `DerivationType`), and the rules for
//! which output kinds may be mixed.

use crate::hash::Algorithm;

use super::{Derivation, DerivationOutput};

/// The kind of a derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DerivationType {
    /// All outputs are input-addressed; `deferred` when their paths are not known yet.
    InputAddressed {
        /// The outputs are [`DerivationOutput::Deferred`].
        deferred: bool,
    },
    /// Content-addressed: one fixed output named `out` (`fixed`, not sandboxed), or floating
    /// outputs (sandboxed).
    ContentAddressed {
        /// The output hash is known in advance.
        fixed: bool,
        /// The build runs in the sandbox (floating outputs).
        sandboxed: bool,
    },
    /// Impure outputs.
    Impure,
}

impl DerivationType {
    /// Whether outputs are content-addressed (fixed, floating or impure).
    pub fn is_ca(self) -> bool {
        !matches!(self, DerivationType::InputAddressed { .. })
    }

    /// Whether this is a fixed-output derivation.
    pub fn is_fixed(self) -> bool {
        matches!(self, DerivationType::ContentAddressed { fixed: true, .. })
    }

    /// Whether this is an impure derivation.
    pub fn is_impure(self) -> bool {
        matches!(self, DerivationType::Impure)
    }

    /// Whether all output paths are known before the build.
    pub fn has_known_output_paths(self) -> bool {
        match self {
            DerivationType::InputAddressed { deferred } => !deferred,
            DerivationType::ContentAddressed { fixed, .. } => fixed,
            DerivationType::Impure => false,
        }
    }

    /// Whether the build runs in the sandbox.
    pub fn is_sandboxed(self) -> bool {
        match self {
            DerivationType::InputAddressed { .. } => true,
            DerivationType::ContentAddressed { sandboxed, .. } => sandboxed,
            DerivationType::Impure => false,
        }
    }
}

/// A combination of outputs that Nix refuses (messages as Nix 2.26 words them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationTypeError {
    /// No outputs at all.
    #[error("must have at least one output")]
    NoOutputs,
    /// More than one fixed output.
    #[error("only one fixed output is allowed for now")]
    SeveralFixedOutputs,
    /// The fixed output is not called `out`.
    #[error("single fixed output must be named \"out\"")]
    FixedOutputNotOut,
    /// Floating outputs with different hash algorithms.
    #[error("all floating outputs must use the same hash algorithm")]
    FloatingAlgorithmsDiffer,
    /// Outputs of different kinds.
    #[error("can't mix derivation output types")]
    Mixed,
}

impl Derivation {
    /// The derivation's kind (Nix's `BasicDerivation::type()`).
    pub fn derivation_type(&self) -> Result<DerivationType, DerivationTypeError> {
        // Counts of input-addressed, fixed, floating, deferred and impure outputs.
        let mut counts = [0usize; 5];
        let mut floating_algo: Option<Algorithm> = None;
        for output in self.outputs.values() {
            let slot = match output {
                DerivationOutput::InputAddressed(_) => 0,
                DerivationOutput::CaFixed(_) => 1,
                DerivationOutput::CaFloating(ma) => {
                    match floating_algo {
                        None => floating_algo = Some(ma.algo),
                        Some(a) if a != ma.algo => return Err(DerivationTypeError::FloatingAlgorithmsDiffer),
                        Some(_) => {}
                    }
                    2
                }
                DerivationOutput::Deferred => 3,
                DerivationOutput::Impure(_) => 4,
            };
            counts[slot] += 1;
        }
        let kinds = counts.iter().filter(|&&n| n > 0).count();
        match kinds {
            0 => return Err(DerivationTypeError::NoOutputs),
            1 => {}
            _ => return Err(DerivationTypeError::Mixed),
        }
        Ok(match counts.iter().position(|&n| n > 0) {
            Some(0) => DerivationType::InputAddressed { deferred: false },
            Some(1) => {
                if counts[1] > 1 {
                    return Err(DerivationTypeError::SeveralFixedOutputs);
                }
                if !self.outputs.contains_key("out") {
                    return Err(DerivationTypeError::FixedOutputNotOut);
                }
                DerivationType::ContentAddressed { fixed: true, sandboxed: false }
            }
            Some(2) => DerivationType::ContentAddressed { fixed: false, sandboxed: true },
            Some(3) => DerivationType::InputAddressed { deferred: true },
            _ => DerivationType::Impure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_address::{ContentAddress, Method, MethodAlgo};
    use crate::hash::Hash;
    use crate::store_path::StorePath;

    fn drv(outputs: &[(&str, DerivationOutput)]) -> Derivation {
        Derivation {
            name: "x".into(),
            outputs: outputs.iter().map(|(n, o)| (n.to_string(), o.clone())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn kinds() {
        let ia = DerivationOutput::InputAddressed(
            StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-x").unwrap(),
        );
        let fixed = DerivationOutput::CaFixed(ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, b"") });
        let nar = |algo| DerivationOutput::CaFloating(MethodAlgo { method: Method::Nar, algo });
        let impure = DerivationOutput::Impure(MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 });

        assert_eq!(drv(&[]).derivation_type(), Err(DerivationTypeError::NoOutputs));
        assert_eq!(drv(&[("out", ia.clone())]).derivation_type(), Ok(DerivationType::InputAddressed { deferred: false }));
        assert_eq!(
            drv(&[("out", DerivationOutput::Deferred)]).derivation_type(),
            Ok(DerivationType::InputAddressed { deferred: true })
        );
        assert!(drv(&[("out", fixed.clone())]).derivation_type().unwrap().is_fixed());
        assert_eq!(drv(&[("bin", fixed.clone())]).derivation_type(), Err(DerivationTypeError::FixedOutputNotOut));
        assert_eq!(
            drv(&[("out", fixed.clone()), ("bin", fixed.clone())]).derivation_type(),
            Err(DerivationTypeError::SeveralFixedOutputs)
        );
        assert_eq!(
            drv(&[("a", nar(Algorithm::Sha256)), ("b", nar(Algorithm::Sha256))]).derivation_type(),
            Ok(DerivationType::ContentAddressed { fixed: false, sandboxed: true })
        );
        assert_eq!(
            drv(&[("a", nar(Algorithm::Sha256)), ("b", nar(Algorithm::Sha512))]).derivation_type(),
            Err(DerivationTypeError::FloatingAlgorithmsDiffer)
        );
        assert_eq!(drv(&[("out", impure)]).derivation_type(), Ok(DerivationType::Impure));
        assert_eq!(drv(&[("out", ia), ("dev", DerivationOutput::Deferred)]).derivation_type(), Err(DerivationTypeError::Mixed));
    }
}
