//! The substituter queries: `HasSubstitutes`, `QuerySubstitutablePaths`,
//! `QuerySubstitutablePathInfo(s)`, and the substitution `QueryValidPaths` asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use nix_formats::content_address::ContentAddress;
use nix_formats::store_path::StorePath;
use store::substitute::{Substitutable, Substituters};
use store::Store;
use worker_protocol::ops::request::query::{HasSubstitutes, QuerySubstitutablePathInfo, QuerySubstitutablePathInfos, QuerySubstitutablePaths};
use worker_protocol::ops::response::SubstitutablePathInfo;
use worker_protocol::ops::Response;

use super::{OpError, Session};
use crate::bridge;

/// The session's substituters (see [`crate::build::substitute::session_substituters`]);
/// problems opening them go to the daemon's log.
pub fn session_substituters(s: &Session) -> Option<Arc<Substituters>> {
    crate::build::substitute::session_substituters(&s.settings, s.options.use_substitutes, &s.store, &mut |w| {
        tracing::warn!("{w}");
    })
}

fn to_wire(info: Substitutable) -> SubstitutablePathInfo {
    SubstitutablePathInfo {
        deriver: info.deriver,
        references: info.references,
        download_size: info.download_size,
        nar_size: info.nar_size,
    }
}

/// What the substituters know of each path (unknown paths and failing caches left out).
async fn infos(s: &Session, paths: BTreeMap<StorePath, Option<ContentAddress>>) -> Result<BTreeMap<StorePath, SubstitutablePathInfo>, OpError> {
    let Some(subs) = session_substituters(s) else { return Ok(BTreeMap::new()) };
    let found = bridge::run(&s.store, move |st: &Store| {
        let mut found = BTreeMap::new();
        for (path, ca) in paths {
            match st.query_substitutable(&subs, &path, ca.as_ref()) {
                Ok(Some(info)) => {
                    found.insert(path, to_wire(info));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("querying substituters for '{}': {e}", st.print(&path)),
            }
        }
        Ok::<_, std::convert::Infallible>(found)
    })
    .await?;
    Ok(found)
}

/// `HasSubstitutes` (obsolete).
pub async fn has_substitutes(s: &Session, r: HasSubstitutes) -> Result<Response, OpError> {
    let found = infos(s, BTreeMap::from([(r.path, None)])).await?;
    Ok(Response::HasSubstitutes(!found.is_empty()))
}

/// `QuerySubstitutablePaths`.
pub async fn substitutable_paths(s: &Session, r: QuerySubstitutablePaths) -> Result<Response, OpError> {
    let found = infos(s, r.paths.into_iter().map(|p| (p, None)).collect()).await?;
    Ok(Response::QuerySubstitutablePaths(found.into_keys().collect()))
}

/// `QuerySubstitutablePathInfo` (obsolete).
pub async fn substitutable_path_info(s: &Session, r: QuerySubstitutablePathInfo) -> Result<Response, OpError> {
    let found = infos(s, BTreeMap::from([(r.path, None)])).await?;
    Ok(Response::QuerySubstitutablePathInfo(found.into_values().next()))
}

/// `QuerySubstitutablePathInfos`.
pub async fn substitutable_path_infos(s: &Session, r: QuerySubstitutablePathInfos) -> Result<Response, OpError> {
    Ok(Response::QuerySubstitutablePathInfos(infos(s, r.paths).await?))
}

/// What `QueryValidPaths` does with its substitute flag (Nix's `substitutePaths`): the invalid
/// paths that are not derivations are substituted where possible; failures are only logged.
pub fn substitute_paths(st: &Store, subs: &Substituters, paths: &BTreeSet<StorePath>) {
    for path in paths.iter().filter(|p| !p.is_derivation()) {
        if st.is_valid(path).unwrap_or(true) {
            continue;
        }
        if let Err(e) = st.substitute(subs, path, None, &mut |_| {}) {
            tracing::warn!("substituting '{}': {e}", st.print(path));
        }
    }
}
