//! Registering floating content-addressed and impure outputs (Nix 2.26's `registerOutputs`
//! for `CAFloating`/`Impure`): the builder wrote each output at a scratch path; outputs are
//! taken in reference order (an output referring to a sibling comes after it), each one's
//! content address is hashed with the hash parts of earlier siblings rewritten to their final
//! ones and its own scratch hash part read as NULs (so a self-reference does not change it),
//! which gives its final path; the tree is rewritten there (scratch hash parts → final) and
//! registered with its `ca`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix_formats::content_address::{ContentAddress, Method, MethodAlgo};
use nix_formats::derivation::{Derivation, DerivationOutput};
use nix_formats::refscan::RefScanner;
use nix_formats::signature::SecretKey;
use nix_formats::store_path::{output_path_name, StorePath};
use store::local::{BuiltOutput, ModuloHasher, PathLock};
use store::Store;

use super::rewrite::Rewriter;
use super::BuildFailure;

/// The method and algorithm of a floating or impure output.
pub fn floating_method(output: &DerivationOutput) -> Option<MethodAlgo> {
    match output {
        DerivationOutput::CaFloating(ma) | DerivationOutput::Impure(ma) => Some(*ma),
        _ => None,
    }
}

fn misc(e: impl std::fmt::Display) -> BuildFailure {
    BuildFailure::misc(e.to_string())
}

/// Orders `names` so that an output comes after the outputs it refers to (Nix's `topoSort`,
/// reversed); a cycle is Nix's error.
pub fn reference_order(
    printed_drv: &str,
    refs: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<String>, BuildFailure> {
    fn visit(
        name: &str,
        parent: &str,
        refs: &BTreeMap<String, BTreeSet<String>>,
        visiting: &mut BTreeSet<String>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        printed_drv: &str,
    ) -> Result<(), BuildFailure> {
        if done.contains(name) {
            return Ok(());
        }
        if !visiting.insert(name.to_owned()) {
            return Err(BuildFailure::permanent(format!(
                "cycle detected in build of '{printed_drv}' in the references of output '{name}' from output '{parent}'"
            )));
        }
        for r in refs.get(name).into_iter().flatten() {
            if r != name {
                visit(r, name, refs, visiting, done, order, printed_drv)?;
            }
        }
        visiting.remove(name);
        done.insert(name.to_owned());
        order.push(name.to_owned());
        Ok(())
    }
    let (mut visiting, mut done, mut order) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for name in refs.keys() {
        visit(name, name, refs, &mut visiting, &mut done, &mut order, printed_drv)?;
    }
    Ok(order)
}

/// The content-address hash of the tree at `real` as `ma` hashes it, with `rewrites` applied
/// and `modulus` (the scratch hash part) read as NULs.
pub fn hash_modulo(real: &Path, ma: MethodAlgo, rewrites: &[(Vec<u8>, Vec<u8>)], modulus: &str) -> Result<nix_formats::hash::Hash, BuildFailure> {
    if ma.method == Method::Git {
        // Git objects are hashed as they are (no self-reference modulus, as in Nix).
        let mut writer = Rewriter::new(Vec::new(), rewrites.iter().cloned());
        nix_formats::nar::dump_path(real, &mut writer).map_err(misc)?;
        let nar = writer.finish().map_err(misc)?;
        return nix_formats::git::hash_nar(&nar[..], ma.algo).map_err(misc);
    }
    let hasher = ModuloHasher::new(Some(ma.algo), modulus);
    let mut writer = Rewriter::new(hasher, rewrites.iter().cloned());
    match ma.method {
        Method::Git => {}
        Method::Nar => nix_formats::nar::dump_path(real, &mut writer).map_err(misc)?,
        Method::Flat | Method::Text => {
            let mut file = std::fs::File::open(real).map_err(misc)?;
            std::io::copy(&mut file, &mut writer).map_err(misc)?;
        }
    }
    let hasher = writer.finish().map_err(misc)?;
    hasher.finish().0.ok_or_else(|| BuildFailure::misc("no hash"))
}

/// Writes the tree at `from` to `to` (which must not exist) with `rewrites` applied, through a
/// NAR in `tmp_dir`.
pub fn copy_rewritten(from: &Path, to: &Path, rewrites: &[(Vec<u8>, Vec<u8>)], tmp_dir: &Path) -> Result<(), BuildFailure> {
    let nar_path = tmp_dir.join(format!(
        ".casnix-rewrite-{}-{}.nar",
        std::process::id(),
        from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let result = (|| -> Result<(), BuildFailure> {
        let file = std::fs::File::create(&nar_path).map_err(misc)?;
        let mut writer = Rewriter::new(std::io::BufWriter::new(file), rewrites.iter().cloned());
        nix_formats::nar::dump_path(from, &mut writer).map_err(misc)?;
        writer.finish().map_err(misc)?.flush().map_err(misc)?;
        let reader = std::io::BufReader::new(std::fs::File::open(&nar_path).map_err(misc)?);
        nix_formats::nar::restore(reader, to, &nix_formats::nar::Limits::default()).map_err(misc)
    })();
    let _ = std::fs::remove_file(&nar_path);
    result
}

/// What registering the floating outputs of one build needs.
pub struct FloatingBuild<'a> {
    /// The store.
    pub store: &'a Store,
    /// The derivation built.
    pub drv_path: &'a StorePath,
    /// Its contents.
    pub drv: &'a Derivation,
    /// Where the builder wrote each output.
    pub scratch: &'a BTreeMap<String, StorePath>,
    /// The input closure (reference candidates).
    pub inputs: &'a BTreeSet<StorePath>,
    /// Where temporary files go.
    pub tmp_dir: &'a Path,
    /// `secret-key-files`.
    pub secret_keys: &'a [SecretKey],
}

impl FloatingBuild<'_> {
    /// Moves each output to its content-addressed path and registers it; returns the final
    /// paths by output name.
    pub fn register(&self) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let st = self.store;
        let printed_drv = st.print(self.drv_path);
        let mut candidates = self.inputs.clone();
        candidates.extend(self.scratch.values().cloned());
        let mut scanned = BTreeMap::new();
        let mut sibling_refs = BTreeMap::new();
        for (name, path) in self.scratch {
            let real = st.real_path(path);
            if std::fs::symlink_metadata(&real).is_err() {
                return Err(BuildFailure::permanent(format!(
                    "builder for '{printed_drv}' failed to produce output path for output '{name}' at '{}'",
                    real.display()
                )));
            }
            let mut scanner = RefScanner::for_store_paths(candidates.iter());
            scanner.scan_path(&real).map_err(|e| misc(format!("scanning '{}' for references: {e}", real.display())))?;
            let mut refs = scanner.found_store_paths(candidates.iter());
            let siblings: BTreeSet<String> =
                self.scratch.iter().filter(|(_, p)| refs.contains(*p)).map(|(n, _)| n.clone()).collect();
            if super::outputs::discards_references(self.drv, name) {
                refs.clear();
            }
            sibling_refs.insert(name.clone(), siblings);
            scanned.insert(name.clone(), refs);
        }
        let order = reference_order(&printed_drv, &sibling_refs)?;
        let mut rewrites: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut finals = BTreeMap::new();
        let mut built = BTreeMap::new();
        for name in order {
            let (Some(scratch), Some(refs)) = (self.scratch.get(&name), scanned.get(&name)) else { continue };
            let ma = self.drv.outputs.get(&name).and_then(floating_method).ok_or_else(|| {
                BuildFailure::misc(format!("output '{name}' of '{printed_drv}' is not floating"))
            })?;
            let (path, output) = self.register_one(&name, scratch, refs, ma, &rewrites)?;
            rewrites.push((scratch.hash_part().as_bytes().to_vec(), path.hash_part().as_bytes().to_vec()));
            finals.insert(name.clone(), path);
            built.insert(name, output);
        }
        super::checks::check_outputs(st, self.drv, &built)?;
        Ok(finals)
    }

    fn register_one(
        &self,
        name: &str,
        scratch: &StorePath,
        refs: &BTreeSet<StorePath>,
        ma: MethodAlgo,
        rewrites: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(StorePath, BuiltOutput), BuildFailure> {
        let st = self.store;
        let real = st.real_path(scratch);
        if ma.method == Method::Flat || ma.method == Method::Text {
            let meta = std::fs::symlink_metadata(&real).map_err(misc)?;
            if !meta.is_file() || meta.permissions().mode() & 0o100 != 0 {
                return Err(BuildFailure::permanent(format!(
                    "output path '{}' should be a non-executable regular file since recursive hashing is not enabled (one of outputHashMode={{flat,text}} is true)",
                    real.display()
                )));
            }
        }
        let hash = hash_modulo(&real, ma, rewrites, scratch.hash_part())?;
        let self_ref = refs.contains(scratch);
        let renamed = |r: &StorePath| -> Result<StorePath, BuildFailure> {
            match rewrites.iter().find(|(from, _)| from == r.hash_part().as_bytes()) {
                Some((_, to)) => {
                    StorePath::from_base_name(&format!("{}-{}", String::from_utf8_lossy(to), r.name())).map_err(misc)
                }
                None => Ok(r.clone()),
            }
        };
        let others = refs.iter().filter(|r| *r != scratch).map(renamed).collect::<Result<BTreeSet<_>, _>>()?;
        let ca = ContentAddress { method: ma.method, hash };
        let out_name = output_path_name(&self.drv.name, name);
        let path = ca
            .store_path(st.store_dir(), &out_name, others.iter(), self_ref)
            .map_err(|e| BuildFailure::permanent(e.to_string()))?;
        let mut references = others;
        if self_ref {
            references.insert(path.clone());
        }
        let target = st.real_path(&path);
        let output = BuiltOutput { path: path.clone(), source: target.clone(), references, deriver: Some(self.drv_path.clone()), ca: Some(ca) };
        st.add_temp_root(&path).map_err(misc)?;
        let _lock = if path != *scratch { Some(PathLock::acquire(&target).map_err(misc)?) } else { None };
        if st.is_valid(&path).map_err(misc)? {
            // Built before (by another derivation, or an earlier build of this one).
            super::remove_present([&real]);
            return Ok((path, output));
        }
        if path != *scratch {
            super::remove_present([&target]);
            let mut all = rewrites.to_vec();
            all.push((scratch.hash_part().as_bytes().to_vec(), path.hash_part().as_bytes().to_vec()));
            copy_rewritten(&real, &target, &all, self.tmp_dir)?;
            super::remove_present([&real]);
        }
        let infos = st.register_locked_outputs(std::slice::from_ref(&output)).map_err(misc)?;
        super::outputs::sign_infos(st, infos, self.secret_keys)?;
        Ok((path, output))
    }
}

/// The real paths of `paths`.
pub fn real_paths<'a>(st: &Store, paths: impl IntoIterator<Item = &'a StorePath>) -> Vec<PathBuf> {
    paths.into_iter().map(|p| st.real_path(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix_formats::hash::Algorithm;

    fn refs(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        pairs.iter().map(|(n, r)| (n.to_string(), r.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn referenced_outputs_come_first() {
        let order = reference_order("d", &refs(&[("dev", &["out"]), ("foo", &["out", "dev"]), ("out", &["out"])])).unwrap();
        assert_eq!(order, vec!["out", "dev", "foo"]);
        let err = reference_order("d", &refs(&[("a", &["b"]), ("b", &["a"])])).unwrap_err();
        assert!(err.message.starts_with("cycle detected in build of 'd'"), "{}", err.message);
    }

    /// Builds "foo" (outputs `out`, self-referencing, and `dev`, a symlink to `out`) as if by
    /// the derivation `drv_base`, and registers it.
    fn build_foo(st: &Store, drv_base: &str, tmp: &Path) -> BTreeMap<String, StorePath> {
        let drv_path = StorePath::from_base_name(drv_base).unwrap();
        let ma = MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 };
        let mut drv = Derivation { name: "foo".into(), ..Default::default() };
        let mut scratch = BTreeMap::new();
        for name in ["out", "dev"] {
            drv.outputs.insert(name.into(), DerivationOutput::CaFloating(ma));
            scratch.insert(name.to_owned(), super::super::check::scratch_path(st, &drv_path, "foo", name).unwrap());
        }
        let out = st.real_path(&scratch["out"]);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("me"), st.print(&scratch["out"])).unwrap();
        std::os::unix::fs::symlink(&out, st.real_path(&scratch["dev"])).unwrap();
        let inputs = BTreeSet::new();
        let build = FloatingBuild { store: st, drv_path: &drv_path, drv: &drv, scratch: &scratch, inputs: &inputs, tmp_dir: tmp, secret_keys: &[] };
        let finals = build.register().unwrap();
        for path in scratch.values() {
            assert!(std::fs::symlink_metadata(st.real_path(path)).is_err(), "scratch path left behind");
        }
        finals
    }

    #[test]
    fn floating_outputs_land_at_their_content_addressed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = store::StoreConfig::new(dir.path().join("store").to_str().unwrap(), dir.path().join("state"));
        config.durability = castore::Durability::Unsynced;
        let st = Store::open(&config).unwrap();
        let finals = build_foo(&st, "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv", dir.path());
        let (out, dev) = (&finals["out"], &finals["dev"]);
        assert_eq!((out.name(), dev.name()), ("foo", "foo-dev"));
        // Self-references and references to siblings now name the final paths.
        let real_out = st.real_path(out);
        assert_eq!(std::fs::read_to_string(real_out.join("me")).unwrap(), st.print(out));
        assert_eq!(std::fs::read_link(st.real_path(dev)).unwrap(), real_out);
        let out_info = st.query_path_info(out).unwrap().unwrap();
        assert_eq!(out_info.references, BTreeSet::from([out.clone()]));
        let ca = out_info.ca.clone().unwrap();
        assert_eq!(ca.store_path(st.store_dir(), "foo", [], true).unwrap(), *out);
        let dev_info = st.query_path_info(dev).unwrap().unwrap();
        assert_eq!(dev_info.references, BTreeSet::from([out.clone()]));
        assert_eq!(dev_info.deriver.unwrap().to_string(), "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv");
        // Another derivation building the same contents gets the same paths.
        let again = build_foo(&st, "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-foo.drv", dir.path());
        assert_eq!(again, finals);
    }

    #[test]
    fn self_references_do_not_change_the_hash_and_are_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = "00000000000000000000000000000000";
        let other = "11111111111111111111111111111111";
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("f"), format!("/nix/store/{scratch}-x and {other}")).unwrap();
        std::os::unix::fs::symlink(format!("/nix/store/{scratch}-x"), a.join("self")).unwrap();
        let b = dir.path().join("b");
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("f"), format!("/nix/store/{} and {other}", "2".repeat(32) + "-x")).unwrap();
        std::os::unix::fs::symlink(format!("/nix/store/{}-x", "2".repeat(32)), b.join("self")).unwrap();
        let ma = MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 };
        let to_other = [(other.as_bytes().to_vec(), b"33333333333333333333333333333333".to_vec())];
        let ha = hash_modulo(&a, ma, &to_other, scratch).unwrap();
        let hb = hash_modulo(&b, ma, &to_other, &"2".repeat(32)).unwrap();
        assert_eq!(ha, hb);
        assert_ne!(ha, hash_modulo(&a, ma, &[], scratch).unwrap());

        let c = dir.path().join("c");
        let mut all = to_other.to_vec();
        all.push((scratch.as_bytes().to_vec(), b"44444444444444444444444444444444".to_vec()));
        copy_rewritten(&a, &c, &all, dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(c.join("f")).unwrap(),
            format!("/nix/store/{}-x and {}", "4".repeat(32), "3".repeat(32))
        );
        assert_eq!(std::fs::read_link(c.join("self")).unwrap().to_str().unwrap(), format!("/nix/store/{}-x", "4".repeat(32)));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".nar")).collect();
        assert!(leftovers.is_empty());
    }
}
