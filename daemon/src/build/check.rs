//! `--check`: build a derivation whose outputs are valid again, into scratch paths, and compare
//! the results with the valid outputs (Nix's `bmCheck`). The builder is told the scratch paths
//! in place of the outputs' (their hash parts rewritten in its environment and arguments, as
//! Nix's `inputRewrites`), and each result is hashed with the scratch hash part read as the
//! real one, so the comparison is with what the output would have been at its own path.

use std::collections::BTreeMap;
use std::io::Write;

use super::rewrite::Rewriter;
use std::path::Path;

use nix_formats::hash::{Algorithm, Hash, Hasher};
use nix_formats::store_path::{output_path_name, StorePath};
use store::Store;

use super::BuildFailure;

/// The scratch path of an output being checked (Nix's `makeFallbackPath`).
pub fn scratch_path(st: &Store, drv_path: &StorePath, drv_name: &str, output: &str) -> Result<StorePath, BuildFailure> {
    st.store_dir()
        .make_store_path(
            &format!("rewrite:{drv_path}:name:{output}"),
            &Hash::zero(Algorithm::Sha256),
            &output_path_name(drv_name, output),
        )
        .map_err(|e| BuildFailure::misc(e.to_string()))
}

/// The NAR hash of the tree at `real`, with `scratch_hash_part` read as `real_hash_part`.
pub fn rewritten_nar_hash(real: &Path, scratch_hash_part: &str, real_hash_part: &str) -> Result<Hash, BuildFailure> {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    {
        let mut rewriter = Rewriter::new(
            &mut hasher,
            [(scratch_hash_part.as_bytes().to_vec(), real_hash_part.as_bytes().to_vec())],
        );
        nix_formats::nar::dump_path(real, &mut rewriter).map_err(|e| BuildFailure::misc(e.to_string()))?;
        rewriter.flush().map_err(|e| BuildFailure::misc(e.to_string()))?;
    }
    Ok(hasher.finish())
}

/// Compares each checked output (built at its scratch path) with the valid output; the first
/// difference is Nix's "may not be deterministic" failure.
pub fn compare(
    st: &Store,
    drv_path: &StorePath,
    outputs: &BTreeMap<String, StorePath>,
    scratch: &BTreeMap<String, StorePath>,
) -> Result<(), BuildFailure> {
    for (name, path) in outputs {
        let Some(tmp) = scratch.get(name) else { continue };
        let info = st
            .query_path_info(path)
            .map_err(|e| BuildFailure::misc(e.to_string()))?
            .ok_or_else(|| BuildFailure::misc(format!("path '{}' is not valid", st.print(path))))?;
        let real = st.real_path(tmp);
        if std::fs::symlink_metadata(&real).is_err() {
            return Err(BuildFailure::permanent(format!(
                "builder for '{}' failed to produce output path for output '{name}' at '{}'",
                st.print(drv_path),
                st.print(tmp)
            )));
        }
        let got = rewritten_nar_hash(&real, tmp.hash_part(), path.hash_part())?;
        if got != info.nar_hash {
            return Err(BuildFailure {
                status: nix_formats::build_result::BuildStatus::NotDeterministic,
                message: format!(
                    "derivation '{}' may not be deterministic: output '{}' differs",
                    st.print(drv_path),
                    st.print(path)
                ),
            });
        }
    }
    Ok(())
}

impl super::Builder<'_> {
    /// The outputs `--check` compares with: the static paths, or for floating outputs the
    /// paths their realisations name (Nix's "some outputs of '…' are not valid, so checking
    /// is not possible" when one is missing).
    pub(super) fn checked_outputs(&self, drv_path: &StorePath, drv: &nix_formats::derivation::Derivation) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let drv_type = drv.derivation_type().map_err(|e| BuildFailure::misc(e.to_string()))?;
        if drv_type.has_known_output_paths() {
            return self.output_paths(drv_path, drv);
        }
        if self.needs_resolution(drv, drv_type) {
            return Err(BuildFailure::misc(format!(
                "casnix-daemon cannot check derivations that are built through their resolved form ('{}')",
                self.store.print(drv_path)
            )));
        }
        let hashes = self.output_hashes(drv)?;
        self.valid_outputs(drv_path, drv, &hashes)?.ok_or_else(|| {
            BuildFailure::misc(format!(
                "some outputs of '{}' are not valid, so checking is not possible",
                self.store.print(drv_path)
            ))
        })
    }
}
