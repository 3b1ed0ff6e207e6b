//! The parts of the builder that content-addressed derivations need (Nix 2.26's
//! `DerivationGoal`): output hashes and realisations (`<hash modulo>!<output>` → path), the
//! outputs a derivation is known to have (its static paths, or its realisations), scratch paths
//! for outputs whose paths follow from their contents, and resolution (inputs replaced by their
//! built outputs, the resolved derivation written and built, its outputs linked to the
//! unresolved derivation's output ids).

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::build_result::BuildStatus;
use nix_formats::derivation::hashing::impure_output_hash;
use nix_formats::derivation::{Derivation, DerivationType, DirectoryReader};
use nix_formats::hash::Hash;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;

use super::{check, resolve, BuildFailure, Built, Builder};
use crate::ops::query::read_derivation;

fn misc(e: impl std::fmt::Display) -> BuildFailure {
    BuildFailure::misc(e.to_string())
}

impl Builder<'_> {
    /// The hash each output's realisation is keyed by (Nix's `staticOutputHashes`; impure
    /// derivations' outputs all have the impure hash).
    pub(super) fn output_hashes(&self, drv: &Derivation) -> Result<BTreeMap<String, Hash>, BuildFailure> {
        if drv.derivation_type().is_ok_and(|t| t.is_impure()) {
            return Ok(drv.outputs.keys().map(|n| (n.clone(), impure_output_hash())).collect());
        }
        let store_dir = self.store.store_dir().clone();
        let mut reader = DirectoryReader::new(self.store.real_store_dir(), store_dir.clone());
        self.hash_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).static_output_hashes(&store_dir, &mut reader, drv).map_err(misc)
    }

    /// The path of each output known before building it (Nix's `checkPathValidity`): the
    /// static paths, the database's record, and with `ca-derivations` the realisations (a valid
    /// static output without one gets one).
    pub(super) fn known_outputs(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        hashes: &BTreeMap<String, Hash>,
    ) -> Result<BTreeMap<String, Option<StorePath>>, BuildFailure> {
        let mut known = drv.output_paths(self.store.store_dir()).map_err(misc)?;
        if known.values().any(Option::is_none) && self.store.is_valid(drv_path).map_err(misc)? {
            for (name, path) in self.store.query_derivation_outputs(drv_path).map_err(misc)? {
                if let Some(slot) = known.get_mut(&name) {
                    slot.get_or_insert(path);
                }
            }
        }
        if !self.settings.ca_derivations {
            return Ok(known);
        }
        for (name, slot) in known.iter_mut() {
            let Some(hash) = hashes.get(name) else { continue };
            let id = DrvOutput { drv_hash: hash.clone(), output_name: name.clone() };
            if let Some(r) = self.store.db().query_realisation(&id).map_err(misc)? {
                *slot = Some(r.out_path);
            } else if let Some(path) = slot.as_ref() {
                if self.store.is_valid(path).map_err(misc)? {
                    self.register_realisation(Realisation::new(id, path.clone()))?;
                }
            }
        }
        Ok(known)
    }

    /// The paths of the `wanted` outputs of `drv_path` if each is known and valid (Nix's goal
    /// for some outputs builds nothing then, whatever the other outputs are); `None` for
    /// impure derivations and when one is missing.
    pub(super) fn wanted_valid(&self, drv_path: &StorePath, wanted: &BTreeSet<String>) -> Result<Option<Built>, BuildFailure> {
        if !self.store.is_valid(drv_path).map_err(misc)? {
            return Ok(None);
        }
        let drv = read_derivation(self.store, drv_path).map_err(misc)?;
        if drv.derivation_type().map_or(true, |t| t.is_impure()) {
            return Ok(None);
        }
        let hashes = self.output_hashes(&drv)?;
        let mut known = self.known_outputs(drv_path, &drv, &hashes)?;
        let mut outputs = BTreeMap::new();
        for name in wanted {
            match known.remove(name).flatten() {
                Some(p) if self.store.is_valid(&p).map_err(misc)? => {
                    outputs.insert(name.clone(), p);
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(Built { status: BuildStatus::AlreadyValid, outputs }))
    }

    /// The outputs' paths if every one is known and valid.
    pub(super) fn valid_outputs(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        hashes: &BTreeMap<String, Hash>,
    ) -> Result<Option<BTreeMap<String, StorePath>>, BuildFailure> {
        let mut valid = BTreeMap::new();
        for (name, path) in self.known_outputs(drv_path, drv, hashes)? {
            match path {
                Some(p) if self.store.is_valid(&p).map_err(misc)? => {
                    valid.insert(name, p);
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(valid))
    }

    /// The path of output `output` of input derivation `input`: from this request's builds,
    /// else as known to the store.
    pub(super) fn input_output(&self, input: &StorePath, output: &str) -> Result<Option<StorePath>, BuildFailure> {
        if let Some(Ok(built)) = self.finished(input) {
            if let Some(p) = built.outputs.get(output) {
                return Ok(Some(p.clone()));
            }
        }
        let drv = read_derivation(self.store, input).map_err(misc)?;
        let hashes = self.output_hashes(&drv)?;
        Ok(self.known_outputs(input, &drv, &hashes)?.remove(output).flatten())
    }

    /// Where the builder writes each output: its own path when known, else a scratch path.
    pub(super) fn scratch_outputs(&self, drv_path: &StorePath, drv: &Derivation) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let mut out = BTreeMap::new();
        for (name, path) in drv.output_paths(self.store.store_dir()).map_err(misc)? {
            let path = match path {
                Some(p) => p,
                None => check::scratch_path(self.store, drv_path, &drv.name, &name)?,
            };
            out.insert(name, path);
        }
        Ok(out)
    }

    /// The outputs' static paths (for `--check`).
    pub(super) fn output_paths(&self, drv_path: &StorePath, drv: &Derivation) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
        let mut out = BTreeMap::new();
        for (name, path) in drv.output_paths(self.store.store_dir()).map_err(misc)? {
            let path = path.ok_or_else(|| {
                BuildFailure::misc(format!(
                    "casnix-daemon cannot check derivations whose output paths are not known in advance ('{}')",
                    self.print(drv_path)
                ))
            })?;
            out.insert(name, path);
        }
        Ok(out)
    }

    /// Whether the derivation is built through its resolved form (Nix's `inputsRealised`).
    pub(super) fn needs_resolution(&self, drv: &Derivation, drv_type: DerivationType) -> bool {
        if drv.input_drvs.is_empty() {
            return false;
        }
        match drv_type {
            DerivationType::InputAddressed { deferred } => deferred,
            DerivationType::ContentAddressed { fixed: true, .. } => self.settings.ca_derivations,
            DerivationType::ContentAddressed { fixed: false, .. } | DerivationType::Impure => true,
        }
    }

    /// Signs and records a realisation.
    pub(super) fn register_realisation(&self, mut realisation: Realisation) -> Result<(), BuildFailure> {
        for key in &self.settings.secret_keys {
            realisation.signatures.insert(key.sign(realisation.fingerprint().as_bytes()).to_string());
        }
        self.store.db().register_realisation(&realisation).map_err(misc)
    }

    /// Records the realisations of a build's outputs (with `ca-derivations`).
    pub(super) fn register_realisations(
        &self,
        hashes: &BTreeMap<String, Hash>,
        outputs: &BTreeMap<String, StorePath>,
    ) -> Result<(), BuildFailure> {
        if !self.settings.ca_derivations {
            return Ok(());
        }
        for (name, path) in outputs {
            let Some(hash) = hashes.get(name) else { continue };
            let id = DrvOutput { drv_hash: hash.clone(), output_name: name.clone() };
            self.register_realisation(Realisation::new(id, path.clone()))?;
        }
        Ok(())
    }

    /// The realisations of `drv`'s inputs (and their dependencies) whose paths `output`
    /// refers to (Nix's `drvOutputReferences`). Inputs without a realisation are left out.
    fn dependent_realisations(&self, drv: &Derivation, output: &StorePath) -> Result<BTreeMap<DrvOutput, StorePath>, BuildFailure> {
        let mut pending = Vec::new();
        for (input, node) in &drv.input_drvs {
            let input_drv = read_derivation(self.store, input).map_err(misc)?;
            let hashes = self.output_hashes(&input_drv)?;
            for name in &node.outputs {
                if let Some(hash) = hashes.get(name) {
                    pending.push(DrvOutput { drv_hash: hash.clone(), output_name: name.clone() });
                }
            }
        }
        let mut closure = BTreeMap::new();
        while let Some(id) = pending.pop() {
            if closure.contains_key(&id) {
                continue;
            }
            let Some(r) = self.store.db().query_realisation(&id).map_err(misc)? else { continue };
            pending.extend(r.dependent_realisations.keys().cloned());
            closure.insert(id, r.out_path);
        }
        let references = match self.store.query_path_info(output).map_err(misc)? {
            Some(info) => info.references,
            None => return Ok(BTreeMap::new()),
        };
        closure.retain(|_, path| references.contains(path));
        Ok(closure)
    }

    /// Resolves `drv` (its inputs built), writes the resolved derivation to the store, builds
    /// it, and links its outputs to `drv`'s output ids (Nix's `resolvedFinished`).
    pub(super) fn build_resolved(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        drv_type: DerivationType,
        hashes: &BTreeMap<String, Hash>,
    ) -> Result<Built, BuildFailure> {
        let store_dir = self.store.store_dir().clone();
        let mut lookup_error = None;
        let resolved = resolve::resolve(drv, &store_dir, &mut |input, output| match self.input_output(input, output) {
            Ok(p) => p,
            Err(e) => {
                lookup_error.get_or_insert(e);
                None
            }
        });
        if let Some(e) = lookup_error {
            return Err(e);
        }
        let resolved = resolved.map_err(misc)?;
        let aterm = resolved.to_aterm(&store_dir).map_err(misc)?;
        let info = self
            .store
            .add_text(&format!("{}.drv", resolved.name), &aterm, &resolved.references())
            .map_err(misc)?;
        let resolved_path = info.path;
        self.store.add_temp_root(&resolved_path).map_err(misc)?;
        tracing::debug!("resolved derivation: '{}' -> '{}'", self.print(drv_path), self.print(&resolved_path));
        let built = self.build_derivation(&resolved_path)?;
        if !drv_type.is_impure() && self.settings.ca_derivations {
            for (name, path) in &built.outputs {
                let Some(hash) = hashes.get(name) else { continue };
                let mut realisation = Realisation::new(DrvOutput { drv_hash: hash.clone(), output_name: name.clone() }, path.clone());
                if !drv_type.is_fixed() {
                    realisation.dependent_realisations = self.dependent_realisations(drv, path)?;
                }
                self.register_realisation(realisation)?;
            }
        }
        self.run_post_build_hook(drv_path, &built.outputs)?;
        let status = match built.status {
            BuildStatus::AlreadyValid => BuildStatus::ResolvesToAlreadyValid,
            other => other,
        };
        Ok(Built { status, outputs: built.outputs })
    }
}

/// The outputs of the valid derivation `drv_path` and their known paths (Nix's
/// `Store::queryPartialDerivationOutputMap`): the database's record, and with `ca-derivations`
/// the realisations of the outputs' ids.
pub fn partial_output_map(
    st: &store::Store,
    drv_path: &StorePath,
    ca_derivations: bool,
) -> Result<BTreeMap<String, Option<StorePath>>, BuildFailure> {
    if !st.is_valid(drv_path).map_err(misc)? {
        return Err(BuildFailure::misc(format!("path '{}' is not valid", st.print(drv_path))));
    }
    let mut outputs: BTreeMap<String, Option<StorePath>> =
        st.query_derivation_outputs(drv_path).map_err(misc)?.into_iter().map(|(n, p)| (n, Some(p))).collect();
    if !ca_derivations {
        return Ok(outputs);
    }
    let drv = read_derivation(st, drv_path).map_err(misc)?;
    let store_dir = st.store_dir().clone();
    let mut reader = DirectoryReader::new(st.real_store_dir(), store_dir.clone());
    let hashes = nix_formats::derivation::DrvHashCache::new()
        .static_output_hashes(&store_dir, &mut reader, &drv)
        .map_err(misc)?;
    for (name, hash) in hashes {
        let id = DrvOutput { drv_hash: hash, output_name: name.clone() };
        match st.db().query_realisation(&id).map_err(misc)? {
            Some(r) => {
                outputs.insert(name, Some(r.out_path));
            }
            None => {
                outputs.entry(name).or_insert(None);
            }
        }
    }
    Ok(outputs)
}
