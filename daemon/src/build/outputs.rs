//! After a successful builder: every output must exist; fixed outputs must have their hash and
//! no references; references are found by scanning for the hash parts of the input closure and
//! the outputs; then the outputs are registered (ingested into castore, canonicalised).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::derivation::{Derivation, DerivationOutput};
use nix_formats::hash::{Encoding, Hash, Hasher};
use nix_formats::refscan::RefScanner;
use nix_formats::signature::SecretKey;
use nix_formats::store_path::StorePath;
use store::local::BuiltOutput;
use store::Store;

use super::BuildFailure;

/// The hash of `path` as `method` hashes it.
fn hash_output(path: &Path, method: Method, algo: nix_formats::hash::Algorithm) -> std::io::Result<Hash> {
    match method {
        Method::Git => {
            let mut nar = Vec::new();
            nix_formats::nar::dump_path(path, &mut nar).map_err(std::io::Error::other)?;
            nix_formats::git::hash_nar(&nar[..], algo).map_err(std::io::Error::other)
        }
        Method::Nar => nix_formats::nar::hash_path(path, algo).map(|(h, _)| h).map_err(std::io::Error::other),
        Method::Flat | Method::Text => {
            let meta = std::fs::symlink_metadata(path)?;
            if !meta.is_file() {
                return Err(std::io::Error::other("a flat fixed output must be a regular file"));
            }
            let mut hasher = Hasher::new(algo);
            let mut file = std::fs::File::open(path)?;
            std::io::copy(&mut file, &mut hasher)?;
            Ok(hasher.finish())
        }
    }
}

/// Whether structured attributes say `unsafeDiscardReferences.<output> = true`.
pub fn discards_references(drv: &Derivation, output: &str) -> bool {
    let Some(json) = drv.env.get(&b"__json"[..]) else { return false };
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    value.get("unsafeDiscardReferences").and_then(|d| d.get(output)).and_then(|v| v.as_bool()) == Some(true)
}

/// Registers what a fixed-output derivation produced with the wrong hash at the path of the
/// hash it has (best effort: the build fails either way).
fn register_actual_fixed_output(
    st: &Store,
    drv_path: &StorePath,
    drv: &Derivation,
    output: &str,
    real: &Path,
    method: Method,
    got: &Hash,
) {
    let name = nix_formats::store_path::output_path_name(&drv.name, output);
    let Ok(actual) = st.store_dir().make_fixed_output_path(&name, method == Method::Nar, got, [], false) else { return };
    if method != Method::Nar && method != Method::Flat {
        return;
    }
    let target = st.real_path(&actual);
    let Ok(_lock) = store::local::PathLock::acquire(&target) else { return };
    if st.is_valid(&actual).unwrap_or(true) {
        return;
    }
    if std::fs::rename(real, &target).is_err() {
        return;
    }
    let built = BuiltOutput {
        path: actual,
        source: target,
        references: BTreeSet::new(),
        deriver: Some(drv_path.clone()),
        ca: Some(ContentAddress { method, hash: got.clone() }),
    };
    if let Err(e) = st.register_locked_outputs(&[built]) {
        tracing::warn!("registering the output of a fixed-output derivation with the wrong hash: {e}");
    }
}

/// Checks and registers the outputs of `drv` (built at `paths`), with `inputs` the input
/// closure. The outputs' locks are held by the caller.
pub fn register(
    st: &Store,
    drv_path: &StorePath,
    drv: &Derivation,
    paths: &BTreeMap<String, StorePath>,
    inputs: &BTreeSet<StorePath>,
    secret_keys: &[SecretKey],
) -> Result<(), BuildFailure> {
    let drv_printed = st.print(drv_path);
    let mut candidates: BTreeSet<StorePath> = inputs.clone();
    candidates.extend(paths.values().cloned());
    let mut built = BTreeMap::new();
    for (name, path) in paths {
        let real = st.real_path(path);
        if std::fs::symlink_metadata(&real).is_err() {
            return Err(BuildFailure::permanent(format!(
                "builder for '{drv_printed}' failed to produce output path for output '{name}' at '{}'",
                st.print(path)
            )));
        }
        let mut scanner = RefScanner::for_store_paths(candidates.iter());
        scanner
            .scan_path(&real)
            .map_err(|e| BuildFailure::misc(format!("scanning '{}' for references: {e}", st.print(path))))?;
        let mut references = scanner.found_store_paths(candidates.iter());
        if discards_references(drv, name) {
            references.clear();
        }
        let ca = match drv.outputs.get(name) {
            Some(DerivationOutput::CaFixed(ca)) => {
                // Only a SHA-256 NAR-hashed path can carry references in its name's hash (Nix
                // fails to compute the others' paths, before comparing hashes).
                let nar_sha256 = ca.method == Method::Nar && ca.hash.algorithm() == nix_formats::hash::Algorithm::Sha256;
                if !nar_sha256 && !references.is_empty() {
                    let path_name = if name == "out" { drv.name.clone() } else { format!("{}-{name}", drv.name) };
                    return Err(BuildFailure::misc(format!(
                        "fixed output derivation '{path_name}' is not allowed to refer to other store paths.\n\
                         You may need to use the 'unsafeDiscardReferences' derivation attribute, see the manual for more details."
                    )));
                }
                let got = hash_output(&real, ca.method, ca.hash.algorithm())
                    .map_err(|e| BuildFailure::misc(format!("hashing '{}': {e}", st.print(path))))?;
                if got != ca.hash {
                    // As Nix: the output is still registered, at the path its actual hash gives,
                    // then the build fails.
                    register_actual_fixed_output(st, drv_path, drv, name, &real, ca.method, &got);
                    return Err(BuildFailure::hash_mismatch(format!(
                        "hash mismatch in fixed-output derivation '{drv_printed}':\n  specified: {}\n     got:    {}",
                        ca.hash.encode(Encoding::Sri, true),
                        got.encode(Encoding::Sri, true)
                    )));
                }
                if let Some(first) = references.iter().next() {
                    return Err(BuildFailure::permanent(format!(
                        "fixed-output derivations must not reference store paths: '{drv_printed}' references {} distinct paths, e.g. '{}'",
                        references.len(),
                        st.print(first)
                    )));
                }
                Some(ContentAddress { method: ca.method, hash: ca.hash.clone() })
            }
            _ => None,
        };
        built.insert(name.clone(), BuiltOutput { path: path.clone(), source: real, references, deriver: Some(drv_path.clone()), ca });
    }
    super::checks::check_outputs(st, drv, &built)?;
    let built: Vec<BuiltOutput> = built.into_values().collect();
    let infos = st.register_locked_outputs(&built).map_err(|e| BuildFailure::misc(e.to_string()))?;
    sign_infos(st, infos, secret_keys)
}

/// Signs registered paths with each key (as Nix signs what it registers when
/// `secret-key-files` is set).
pub fn sign_infos(
    st: &Store,
    infos: Vec<nix_formats::path_info::ValidPathInfo>,
    secret_keys: &[SecretKey],
) -> Result<(), BuildFailure> {
    for mut info in infos {
        let mut sigs = BTreeSet::new();
        for key in secret_keys {
            let sig = info.sign(st.store_dir(), key).map_err(|e| BuildFailure::misc(e.to_string()))?;
            sigs.insert(sig.to_string());
        }
        if !sigs.is_empty() {
            st.db().add_signatures(&info.path, &sigs).map_err(|e| BuildFailure::misc(e.to_string()))?;
        }
    }
    Ok(())
}

/// Without `auto-optimise-store`, Nix keeps identical files of different paths apart: each
/// output's files that other paths share get private copies (best effort: the outputs are
/// valid and correct either way).
pub fn unshare(st: &Store, paths: &BTreeMap<String, StorePath>) {
    for path in paths.values() {
        if let Err(e) = st.unshare_files(path) {
            tracing::warn!("giving '{}' files of its own: {e}", st.print(path));
        }
    }
}
