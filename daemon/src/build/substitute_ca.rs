//! Outputs of content-addressed derivations taken from the substituters through their
//! realisations (Nix 2.26's `DrvOutputSubstitutionGoal`): for each output whose path is not
//! known yet, the substituters' realisation of `<hash modulo>!<output>` names the path; the
//! realisations it depends on come first (they must agree with local ones), then the path is
//! substituted and the realisation recorded. `QueryMissing` counts such outputs as
//! substitutable ([`substitutable_output`]).

use std::collections::BTreeMap;

use nix_formats::derivation::{Derivation, DirectoryReader, DrvHashCache};
use nix_formats::hash::Hash;
use nix_formats::realisation::DrvOutput;
use nix_formats::store_path::StorePath;
use store::substitute::Substituters;
use store::Store;
use worker_protocol::logger::Verbosity;

use super::substitute::{substitute_logged, substitutes_allowed};
use super::{BuildFailure, Builder};
use crate::ops::other::warning;

/// How deep dependent realisations are followed.
const MAX_DEPTH: usize = 64;

fn misc(e: impl std::fmt::Display) -> BuildFailure {
    BuildFailure::misc(e.to_string())
}

impl Builder<'_> {
    /// Every output of `drv` (floating: paths unknown before building) from the substituters'
    /// realisations, keyed by `hashes`. `None` (build it) unless all of them could be
    /// substituted.
    pub(super) fn substitute_realisations(
        &self,
        drv: &Derivation,
        hashes: &BTreeMap<String, Hash>,
    ) -> Result<Option<BTreeMap<String, StorePath>>, BuildFailure> {
        let Some(subs) = self.settings.substituters.as_deref() else { return Ok(None) };
        if !substitutes_allowed(drv) {
            return Ok(None);
        }
        let mut outputs = BTreeMap::new();
        for name in drv.outputs.keys() {
            let Some(hash) = hashes.get(name) else { return Ok(None) };
            let id = DrvOutput { drv_hash: hash.clone(), output_name: name.clone() };
            match self.fetch_realisation(subs, &id, 0)? {
                Some(path) => {
                    outputs.insert(name.clone(), path);
                }
                None => return Ok(None),
            }
        }
        Ok(Some(outputs))
    }

    /// Makes the realisation `id` known and its path valid, from the local store or the
    /// substituters. `None` when that is not possible.
    fn fetch_realisation(&self, subs: &Substituters, id: &DrvOutput, depth: usize) -> Result<Option<StorePath>, BuildFailure> {
        let local = self.store.db().query_realisation(id).map_err(misc)?;
        if let Some(local) = &local {
            if self.store.is_valid(&local.out_path).map_err(misc)? {
                return Ok(Some(local.out_path.clone()));
            }
        }
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        let mut warn = |text: String| self.log.line(Verbosity::Warn, warning(&text));
        let Some((found, _)) = subs.query_realisation(self.store.store_dir(), id, &mut warn) else { return Ok(None) };
        for (dep_id, dep_path) in &found.dependent_realisations {
            if let Some(dep_local) = self.store.db().query_realisation(dep_id).map_err(misc)? {
                if dep_local.out_path != *dep_path {
                    warn(format!(
                        "substituter has an incompatible realisation for '{dep_id}', ignoring.\nLocal: {}\nRemote: {}",
                        self.print(&dep_local.out_path),
                        self.print(dep_path)
                    ));
                    return Ok(None);
                }
            }
            if self.fetch_realisation(subs, dep_id, depth + 1)?.as_ref() != Some(dep_path) {
                return Ok(None);
            }
        }
        if !self.store.is_valid(&found.out_path).map_err(misc)? {
            match substitute_logged(self.store, subs, &self.log, &found.out_path, None) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    warn(format!("substitution of '{}' failed: {e}", self.print(&found.out_path)));
                    return Ok(None);
                }
            }
        }
        self.store.db().register_realisation(&found).map_err(misc)?;
        Ok(Some(found.out_path))
    }
}

/// For `QueryMissing`: the path the substituters' realisation gives output `name` of `drv`, if
/// they have one.
pub fn substitutable_output(store: &Store, subs: &Substituters, drv: &Derivation, name: &str) -> Option<StorePath> {
    if !substitutes_allowed(drv) {
        return None;
    }
    let store_dir = store.store_dir().clone();
    let mut reader = DirectoryReader::new(store.real_store_dir(), store_dir.clone());
    let hashes = DrvHashCache::default().static_output_hashes(&store_dir, &mut reader, drv).ok()?;
    let id = DrvOutput { drv_hash: hashes.get(name)?.clone(), output_name: name.to_owned() };
    let (realisation, _) = subs.query_realisation(&store_dir, &id, &mut |w| tracing::warn!("{w}"))?;
    Some(realisation.out_path)
}
