//! Questions about paths and derivations: validity, path info, references, derivers,
//! derivation outputs, `QueryMissing`, realisations.

use std::collections::BTreeSet;
use std::sync::Arc;

use nix_formats::derivation::Derivation;
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::store_path::StorePath;
use nix_formats::content_address::ContentAddress;
use nix_formats::path_info::ValidPathInfo;
use store::substitute::{Substitutable, Substituters};
use store::{Store, StoreError};
use worker_protocol::ops::request::query::*;
use worker_protocol::ops::response::{MissingPaths, RealisationReply};
use worker_protocol::ops::Response;
use worker_protocol::types::UnkeyedValidPathInfo;
use worker_protocol::ProtocolVersion;

use super::{OpError, Session};
use crate::bridge;

/// The most derivations `QueryMissing` walks through.
const MAX_MISSING_WALK: usize = 1 << 20;
/// The largest `.drv` file read.
const MAX_DRV_SIZE: u64 = 64 << 20;

/// The info of a valid path (see [`Session::path_info`]), or Nix's "is not valid" error.
fn valid_info(s: &Session, path: &StorePath) -> Result<Arc<ValidPathInfo>, StoreError> {
    s.path_info(path)?.ok_or_else(|| StoreError::InvalidPath(s.print(path)))
}

/// Reads and parses the derivation at `drv_path` from the store directory.
pub fn read_derivation(store: &Store, drv_path: &StorePath) -> Result<Derivation, StoreError> {
    let real = store.real_path(drv_path);
    let fail = |why: &str| StoreError::io("reading derivation", &real)(std::io::Error::other(why.to_owned()));
    let name = Derivation::name_from_path(drv_path).ok_or_else(|| fail("not a derivation"))?;
    let meta = std::fs::metadata(&real).map_err(StoreError::io("reading derivation", &real))?;
    if meta.len() > MAX_DRV_SIZE {
        return Err(fail("file too large"));
    }
    let bytes = std::fs::read(&real).map_err(StoreError::io("reading derivation", &real))?;
    Derivation::parse_aterm(&bytes, name, store.store_dir())
        .map_err(|e| fail(&e.to_string()))
}

/// `IsValidPath`.
pub async fn is_valid_path(s: &Session, r: IsValidPath) -> Result<Response, OpError> {
    Ok(Response::IsValidPath(s.is_valid(&r.path)?))
}

/// `QueryPathHash`: the NAR hash of a valid path.
pub async fn path_hash(s: &Session, r: QueryPathHash) -> Result<Response, OpError> {
    Ok(Response::QueryPathHash(valid_info(s, &r.path)?.nar_hash.clone()))
}

/// `QueryReferences`: the references of a valid path.
pub async fn references(s: &Session, r: QueryReferences) -> Result<Response, OpError> {
    Ok(Response::QueryReferences(valid_info(s, &r.path)?.references.clone()))
}

/// `QueryReferrers`: the valid paths that refer to a path (none for an invalid one).
pub async fn referrers(s: &Session, r: QueryReferrers) -> Result<Response, OpError> {
    Ok(Response::QueryReferrers(bridge::run(&s.store, move |st| st.query_referrers(&r.path)).await?))
}

/// `QueryDeriver`: the recorded deriver of a valid path.
pub async fn deriver(s: &Session, r: QueryDeriver) -> Result<Response, OpError> {
    Ok(Response::QueryDeriver(valid_info(s, &r.path)?.deriver.clone()))
}

/// `QueryValidDerivers`.
pub async fn valid_derivers(s: &Session, r: QueryValidDerivers) -> Result<Response, OpError> {
    Ok(Response::QueryValidDerivers(bridge::run(&s.store, move |st| st.query_valid_derivers(&r.path)).await?))
}

/// `QueryDerivationOutputs`: the known output paths of a derivation.
pub async fn derivation_outputs(s: &Session, r: QueryDerivationOutputs) -> Result<Response, OpError> {
    let outputs = bridge::run(&s.store, move |st| st.query_derivation_outputs(&r.path)).await?;
    Ok(Response::QueryDerivationOutputs(outputs.into_values().collect()))
}

/// `QueryDerivationOutputNames`: the output names, read from the `.drv` file.
pub async fn derivation_output_names(s: &Session, r: QueryDerivationOutputNames) -> Result<Response, OpError> {
    let drv = bridge::run(&s.store, move |st| read_derivation(st, &r.path)).await?;
    Ok(Response::QueryDerivationOutputNames(drv.outputs.into_keys().collect()))
}

/// `QueryDerivationOutputMap`: the outputs of a valid derivation and their known paths (with
/// `ca-derivations`, realisations included).
pub async fn derivation_output_map(s: &Session, r: QueryDerivationOutputMap) -> Result<Response, OpError> {
    let ca = s.settings.experimental_features.iter().any(|f| f == "ca-derivations");
    let map = bridge::run(&s.store, move |st| {
        crate::build::floating::partial_output_map(st, &r.path, ca).map_err(|e| e.message)
    })
    .await?;
    Ok(Response::QueryDerivationOutputMap(map))
}

/// `QueryPathInfo`: before 1.17 an invalid path is an error, after it an empty answer.
pub async fn path_info(s: &Session, version: ProtocolVersion, r: QueryPathInfo) -> Result<Response, OpError> {
    match s.path_info(&r.path)? {
        Some(info) => Ok(Response::QueryPathInfo(Some(UnkeyedValidPathInfo::split(ValidPathInfo::clone(&info)).1))),
        None if !version.at_least(1, 17) => Err(StoreError::InvalidPath(s.print(&r.path)).into()),
        None => Ok(Response::QueryPathInfo(None)),
    }
}

/// `QueryPathFromHashPart`.
pub async fn path_from_hash_part(s: &Session, r: QueryPathFromHashPart) -> Result<Response, OpError> {
    let found = bridge::run(&s.store, move |st| st.query_path_from_hash_part(&r.hash_part)).await?;
    Ok(Response::QueryPathFromHashPart(found))
}

/// `QueryAllValidPaths`.
pub async fn all_valid_paths(s: &Session) -> Result<Response, OpError> {
    Ok(Response::QueryAllValidPaths(bridge::run(&s.store, |st| st.query_all_valid_paths()).await?))
}

/// `QueryValidPaths`: the valid ones among the paths, after substituting the missing ones when
/// asked to.
pub async fn valid_paths(s: &Session, r: QueryValidPaths) -> Result<Response, OpError> {
    let subs = if r.substitute { super::substitutes::session_substituters(s) } else { None };
    let valid = bridge::run(&s.store, move |st| {
        if let Some(subs) = &subs {
            super::substitutes::substitute_paths(st, subs, &r.paths);
        }
        let mut valid = BTreeSet::new();
        for path in r.paths {
            if st.is_valid(&path)? {
                valid.insert(path);
            }
        }
        Ok::<_, StoreError>(valid)
    })
    .await?;
    Ok(Response::QueryValidPaths(valid))
}

/// `QueryRealisation`.
pub async fn realisation(s: &Session, r: QueryRealisation) -> Result<Response, OpError> {
    let found = bridge::run(&s.store, move |st| st.db().query_realisation(&r.id).map_err(StoreError::from)).await?;
    Ok(Response::QueryRealisation(RealisationReply::Realisations(found.into_iter().collect())))
}

/// The walk of Nix's `queryMissing`: what must be built, what can be substituted (and how
/// much that is), and what is unknown (invalid, neither buildable nor substitutable).
struct MissingWalk<'a> {
    store: &'a Store,
    subs: Option<&'a Substituters>,
    done: BTreeSet<String>,
    result: MissingPaths,
    /// Whether `ca-derivations` is enabled (realisations give output paths).
    ca_derivations: bool,
}

impl MissingWalk<'_> {
    fn visit(&mut self, target: &DerivedPath) -> Result<(), StoreError> {
        if self.done.len() > MAX_MISSING_WALK {
            return Ok(());
        }
        match target {
            DerivedPath::Opaque(path) => {
                if !self.done.insert(format!("o:{path}")) || self.store.is_valid(path)? {
                    return Ok(());
                }
                match self.substitutable(path, None) {
                    Some(info) => self.will_substitute(path, info)?,
                    None => {
                        self.result.unknown.insert(path.clone());
                    }
                }
            }
            DerivedPath::Built { drv_path, outputs } => {
                // A dynamic derivation's own path is only known after building: Nix leaves
                // those to the builder too.
                let SingleDerivedPath::Opaque(drv_path) = drv_path else { return Ok(()) };
                self.visit_derivation(drv_path, outputs)?;
            }
        }
        Ok(())
    }

    fn visit_derivation(&mut self, drv_path: &StorePath, wanted: &OutputsSpec) -> Result<(), StoreError> {
        if !self.done.insert(format!("d:{drv_path}:{wanted:?}")) {
            return Ok(());
        }
        if !self.store.is_valid(drv_path)? {
            self.result.unknown.insert(drv_path.clone());
            return Ok(());
        }
        let drv = read_derivation(self.store, drv_path)?;
        // As Nix: an output whose path is not known yet (no realisation) means building; so
        // does a wanted output that is not valid, unless the substituters have every missing one.
        let known = crate::build::floating::partial_output_map(self.store, drv_path, self.ca_derivations)
            .map_err(|e| {
                let real = self.store.real_path(drv_path);
                StoreError::io("reading the outputs of", &real)(std::io::Error::other(e.message))
            })?;
        let mut missing = drv.outputs.keys().any(|name| !matches!(known.get(name), Some(Some(_))));
        // Missing outputs a substituter has (all of them, or the derivation is built).
        // (Outputs whose paths are unknown may be known to the substituters' realisations.)
        let mut substitutable = if missing && self.subs.is_none() { None } else { Some(Vec::new()) };
        let allowed = crate::build::substitute::substitutes_allowed(&drv);
        for name in drv.outputs.keys() {
            let wanted_here = match wanted {
                OutputsSpec::All => true,
                OutputsSpec::Names(names) => names.contains(name),
            };
            if !wanted_here {
                continue;
            }
            match known.get(name) {
                Some(Some(path)) if self.store.is_valid(path)? => {}
                Some(Some(path)) => {
                    missing = true;
                    let ca = crate::build::substitute::output_ca(&drv, name);
                    let found = if allowed { self.substitutable(path, ca.as_ref()) } else { None };
                    match (found, substitutable.as_mut()) {
                        (Some(info), Some(list)) => list.push((path.clone(), info)),
                        _ => substitutable = None,
                    }
                }
                _ => {
                    missing = true;
                    // A floating output the substituters have a realisation for.
                    let found = self.subs.filter(|_| allowed).and_then(|subs| {
                        let path = crate::build::substitute_ca::substitutable_output(self.store, subs, &drv, name)?;
                        if self.store.is_valid(&path).ok()? {
                            return Some((path, None));
                        }
                        let info = self.substitutable(&path, None)?;
                        Some((path, Some(info)))
                    });
                    match (found, substitutable.as_mut()) {
                        (Some((path, Some(info))), Some(list)) => list.push((path, info)),
                        (Some((_, None)), Some(_)) => {}
                        _ => substitutable = None,
                    }
                }
            }
        }
        if !missing {
            return Ok(());
        }
        if let Some(list) = substitutable {
            for (path, info) in list {
                self.will_substitute(&path, info)?;
            }
            return Ok(());
        }
        self.result.will_build.insert(drv_path.clone());
        for (input, needed) in &drv.input_drvs {
            let spec = OutputsSpec::Names(needed.outputs.clone());
            self.visit_derivation(input, &spec)?;
        }
        for src in &drv.input_srcs {
            self.visit(&DerivedPath::Opaque(src.clone()))?;
        }
        Ok(())
    }
}

impl MissingWalk<'_> {
    /// What the substituters know of `path`.
    fn substitutable(&self, path: &StorePath, ca: Option<&ContentAddress>) -> Option<Substitutable> {
        let subs = self.subs?;
        self.store.query_substitutable(subs, path, ca).unwrap_or_else(|e| {
            tracing::warn!("querying substituters for '{}': {e}", self.store.print(path));
            None
        })
    }

    /// Counts `path` as substituted, and walks its references.
    fn will_substitute(&mut self, path: &StorePath, info: Substitutable) -> Result<(), StoreError> {
        if !self.result.will_substitute.insert(path.clone()) {
            return Ok(());
        }
        self.result.download_size += info.download_size;
        self.result.nar_size += info.nar_size;
        for reference in info.references.iter().filter(|r| *r != path) {
            self.visit(&DerivedPath::Opaque(reference.clone()))?;
        }
        Ok(())
    }
}

/// `QueryMissing`.
pub async fn missing(s: &Session, r: QueryMissing) -> Result<Response, OpError> {
    let ca_derivations = s.settings.experimental_features.iter().any(|f| f == "ca-derivations");
    let subs = super::substitutes::session_substituters(s);
    let result = bridge::run(&s.store, move |st| {
        let mut walk = MissingWalk {
            store: st,
            subs: subs.as_deref(),
            done: BTreeSet::new(),
            result: MissingPaths::default(),
            ca_derivations,
        };
        for target in &r.targets {
            walk.visit(target)?;
        }
        Ok::<_, StoreError>(walk.result)
    })
    .await?;
    Ok(Response::QueryMissing(result))
}
