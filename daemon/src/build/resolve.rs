//! Resolving a derivation (Nix 2.26's `Derivation::tryResolve`): once its input derivations are
//! built, each needed input output becomes an input source, the placeholders that stood for
//! those outputs (`DownstreamPlaceholder`s) are replaced by their paths in the builder, the
//! arguments and the environment, and deferred input-addressed outputs get their paths from
//! the resolved derivation's hash. The resolved derivation has no input derivations.

use std::collections::BTreeMap;

use nix_formats::derivation::{hash_derivation_modulo, Derivation, DerivationOutput, HashModuloError, InputOutputs};
use nix_formats::hash::{compress, Algorithm, Hash};
use nix_formats::nixbase32;
use nix_formats::store_path::{output_path_name, StoreDir, StorePath, StorePathError};

/// Why a derivation cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// An input output has no known path yet.
    #[error("output '{output}' of input '{drv}' missing, aborting the resolving")]
    Missing {
        /// The input derivation (printed).
        drv: String,
        /// The output.
        output: String,
    },
    /// The resolved derivation cannot be hashed.
    #[error(transparent)]
    Hash(#[from] HashModuloError),
    /// An output path cannot be made.
    #[error(transparent)]
    Path(#[from] StorePathError),
}

/// The placeholder hash of an output of a derivation not built yet (Nix's
/// `DownstreamPlaceholder::unknownCaOutput`): SHA-256 of
/// `nix-upstream-output:<drv hash part>:<output path name>`.
pub fn upstream_placeholder(drv_path: &StorePath, output: &str) -> Hash {
    let drv_name = Derivation::name_from_path(drv_path).unwrap_or(drv_path.name());
    let text = format!("nix-upstream-output:{}:{}", drv_path.hash_part(), output_path_name(drv_name, output));
    Hash::of(Algorithm::Sha256, text.as_bytes())
}

/// The placeholder hash of an output of a derivation that is itself the output `parent` stands
/// for (Nix's `DownstreamPlaceholder::unknownDerivation`): SHA-256 of
/// `nix-computed-output:<nix32 of parent compressed to 20 bytes>:<output>`.
pub fn computed_placeholder(parent: &Hash, output: &str) -> Hash {
    let compressed = compress(parent.digest(), 20);
    let text = format!("nix-computed-output:{}:{output}", nixbase32::encode(&compressed));
    Hash::of(Algorithm::Sha256, text.as_bytes())
}

/// How a placeholder appears in a derivation: `/` and the nix32 hash.
pub fn render_placeholder(hash: &Hash) -> String {
    format!("/{}", nixbase32::encode(hash.digest()))
}

/// Replaces each key of `rewrites` by its value in `s`.
fn rewrite(s: &[u8], rewrites: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    sandbox::env::rewrite(s, rewrites)
}

struct Resolver<'a> {
    store_dir: &'a StoreDir,
    lookup: &'a mut dyn FnMut(&StorePath, &str) -> Option<StorePath>,
    drv: Derivation,
    rewrites: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Resolver<'_> {
    fn input(&mut self, parent: Option<&Hash>, input: &StorePath, node: &InputOutputs) -> Result<(), ResolveError> {
        let placeholder = |output: &str| match parent {
            Some(p) => computed_placeholder(p, output),
            None => upstream_placeholder(input, output),
        };
        let mut get = |output: &str| {
            (self.lookup)(input, output)
                .ok_or_else(|| ResolveError::Missing { drv: self.store_dir.print(input), output: output.to_owned() })
        };
        let mut found = Vec::new();
        for output in &node.outputs {
            found.push((output.clone(), get(output)?));
        }
        let mut children = Vec::new();
        for (output, child) in &node.dynamic_outputs {
            children.push((get(output)?, placeholder(output), child));
        }
        for (output, path) in found {
            self.rewrites
                .insert(render_placeholder(&placeholder(&output)).into_bytes(), self.store_dir.print(&path).into_bytes());
            self.drv.input_srcs.insert(path);
        }
        for (path, hash, child) in children {
            self.input(Some(&hash), &path, child)?;
        }
        Ok(())
    }
}

/// Resolves `drv`: `lookup(input, output)` gives the path of an output of an input derivation
/// (for dynamic inputs, `input` is the path an output turned out to be).
pub fn resolve(
    drv: &Derivation,
    store_dir: &StoreDir,
    lookup: &mut dyn FnMut(&StorePath, &str) -> Option<StorePath>,
) -> Result<Derivation, ResolveError> {
    let mut start = drv.clone();
    start.input_drvs.clear();
    let mut r = Resolver { store_dir, lookup, drv: start, rewrites: BTreeMap::new() };
    for (input, node) in &drv.input_drvs {
        r.input(None, input, node)?;
    }
    let (mut resolved, rewrites) = (r.drv, r.rewrites);
    if !rewrites.is_empty() {
        resolved.builder = rewrite(&resolved.builder, &rewrites);
        resolved.args = resolved.args.iter().map(|a| rewrite(a, &rewrites)).collect();
        resolved.env = resolved.env.iter().map(|(k, v)| (rewrite(k, &rewrites), rewrite(v, &rewrites))).collect();
    }
    if resolved.outputs.values().any(|o| matches!(o, DerivationOutput::Deferred)) {
        let hashes = hash_derivation_modulo(&resolved, store_dir, true, &mut |p| {
            Err(HashModuloError::UnknownInput(store_dir.print(p)))
        })?
        .hashes;
        let deferred: Vec<String> = resolved
            .outputs
            .iter()
            .filter(|(_, o)| matches!(o, DerivationOutput::Deferred))
            .map(|(n, _)| n.clone())
            .collect();
        for name in deferred {
            let hash = hashes.get(&name).ok_or_else(|| HashModuloError::MissingOutput {
                output: name.clone(),
                drv_name: resolved.name.clone(),
            })?;
            let path = store_dir.make_output_path(&name, hash, &resolved.name)?;
            resolved.env.insert(name.clone().into_bytes(), store_dir.print(&path).into_bytes());
            resolved.outputs.insert(name, DerivationOutput::InputAddressed(path));
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix_formats::content_address::{Method, MethodAlgo};

    fn dir() -> StoreDir {
        StoreDir::new("/nix/store")
    }

    #[test]
    fn placeholders_match_nix() {
        // Values from Nix 2.26's downstream-placeholder tests.
        let drv = dir().parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv").unwrap();
        assert_eq!(
            render_placeholder(&upstream_placeholder(&drv, "out")),
            "/0c6rn30q4frawknapgwq386zq358m8r6msvywcvc89n6m5p2dgbz"
        );
        let drv_drv = dir().parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv.drv").unwrap();
        let nested = computed_placeholder(&upstream_placeholder(&drv_drv, "out"), "out");
        assert_eq!(render_placeholder(&nested), "/0gn6agqxjyyalf0dpihgyf49xq5hqxgw100f0wydnj6yqrhqsb3w");
    }

    #[test]
    fn resolving_replaces_placeholders_and_fills_deferred_outputs() {
        let store_dir = dir();
        let input = store_dir.parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv").unwrap();
        let actual = store_dir.parse("/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-foo").unwrap();
        let ph = render_placeholder(&upstream_placeholder(&input, "out"));
        let mut drv = Derivation { name: "bar".into(), system: b"x86_64-linux".to_vec(), builder: b"/bin/sh".to_vec(), ..Default::default() };
        drv.args = vec![format!("-c echo {ph}/bin").into_bytes()];
        drv.env.insert(b"dep".to_vec(), ph.clone().into_bytes());
        drv.env.insert(b"out".to_vec(), Vec::new());
        drv.outputs.insert("out".into(), DerivationOutput::Deferred);
        drv.input_drvs.insert(input.clone(), InputOutputs::of(["out"]));

        let mut asked = Vec::new();
        let resolved = resolve(&drv, &store_dir, &mut |d, o| {
            asked.push((d.clone(), o.to_owned()));
            Some(actual.clone())
        })
        .unwrap();
        assert_eq!(asked, vec![(input.clone(), "out".to_owned())]);
        assert!(resolved.input_drvs.is_empty());
        assert!(resolved.input_srcs.contains(&actual));
        let printed = store_dir.print(&actual);
        assert_eq!(resolved.args[0], format!("-c echo {printed}/bin").into_bytes());
        assert_eq!(resolved.env[&b"dep"[..]], printed.into_bytes());
        let DerivationOutput::InputAddressed(out) = &resolved.outputs["out"] else { panic!("not input-addressed") };
        assert_eq!(resolved.env[&b"out"[..]], store_dir.print(out).into_bytes());
        // The path is the one the resolved derivation's own masked hash gives.
        let mut check = resolved.clone();
        check.outputs.insert("out".into(), DerivationOutput::Deferred);
        check.env.insert(b"out".to_vec(), Vec::new());
        let h = hash_derivation_modulo(&check, &store_dir, true, &mut |_| unreachable!()).unwrap();
        assert_eq!(out, &store_dir.make_output_path("out", &h.hashes["out"], "bar").unwrap());

        // Floating outputs stay floating; a missing input output is an error.
        drv.outputs.insert("out".into(), DerivationOutput::CaFloating(MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 }));
        let err = resolve(&drv, &store_dir, &mut |_, _| None).unwrap_err();
        assert!(matches!(err, ResolveError::Missing { .. }), "{err}");
    }
}
