//! Operations on a recursive Nix connection (a builder's `.nix-socket`), as Nix 2.26's
//! `RestrictedStore`: only the build's input closure and what was added or built through the
//! socket exist ([`Restriction`]); adds and builds make their paths visible; path infos are
//! censored (no deriver, registration time, `ultimate` or signatures); roots and garbage
//! collection are no-ops; `SetOptions` is ignored; what the restricted store cannot do is
//! refused.

use std::collections::BTreeSet;

use nix_formats::build_result::{BuildResult, KeyedBuildResult};
use nix_formats::derived_path::DerivedPath;
use store::db::ClosureOptions;
use tokio::io::{AsyncRead, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::ops::request::query::{QueryMissing, QueryValidPaths};
use worker_protocol::ops::response::{GcResult, RealisationReply};
use worker_protocol::ops::{Request, Response};
use worker_protocol::types::BuildMode;

use super::{add, build, query, refuse, roots, substitutes, OpError, Session};
use crate::bridge;
use crate::build::recursive::Restriction;

/// Nix's refusal of an operation a store does not support.
fn unsupported<T>(op: &str) -> Result<T, OpError> {
    refuse(format!("operation '{op}' is not supported by store 'local'"))
}

/// Serves `request` on a recursive Nix connection, answering it on `conn`.
pub async fn perform<R, W>(
    s: &mut Session,
    conn: &mut ServerConnection<R, W>,
    request: Request,
    r: &Restriction,
) -> Result<(), OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use Request as Q;
    let response = match request {
        Q::IsValidPath(q) => {
            let allowed = r.is_allowed(&q.path);
            Response::IsValidPath(allowed && s.store.is_valid(&q.path)?)
        }
        Q::QueryPathInfo(q) => {
            if r.is_allowed(&q.path) {
                match query::path_info(s, conn.version(), q).await? {
                    Response::QueryPathInfo(Some(mut info)) => {
                        info.deriver = None;
                        info.registration_time = 0;
                        info.ultimate = false;
                        info.sigs.clear();
                        Response::QueryPathInfo(Some(info))
                    }
                    other => other,
                }
            } else if conn.version().at_least(1, 17) {
                Response::QueryPathInfo(None)
            } else {
                return Err(store::StoreError::InvalidPath(s.print(&q.path)).into());
            }
        }
        Q::QueryValidPaths(q) => {
            let paths = q.paths.into_iter().filter(|p| r.is_allowed(p)).collect();
            query::valid_paths(s, QueryValidPaths { paths, substitute: false }).await?
        }
        Q::QueryAllValidPaths(_) => {
            let mut valid = BTreeSet::new();
            for path in r.all() {
                if s.store.is_valid(&path)? {
                    valid.insert(path);
                }
            }
            Response::QueryAllValidPaths(valid)
        }
        Q::QueryReferrers(_) => Response::QueryReferrers(BTreeSet::new()),
        Q::QueryPathHash(q) => {
            require(s, r, &q.path, "query")?;
            query::path_hash(s, q).await?
        }
        Q::QueryReferences(q) => {
            require(s, r, &q.path, "query")?;
            query::references(s, q).await?
        }
        Q::QueryDeriver(q) => {
            require(s, r, &q.path, "query")?;
            Response::QueryDeriver(None)
        }
        Q::QueryDerivationOutputMap(q) => {
            require_drv(s, r, &q.path)?;
            query::derivation_output_map(s, q).await?
        }
        Q::QueryDerivationOutputs(q) => {
            require_drv(s, r, &q.path)?;
            query::derivation_outputs(s, q).await?
        }
        Q::QueryDerivationOutputNames(q) => {
            require_drv(s, r, &q.path)?;
            query::derivation_output_names(s, q).await?
        }
        Q::QueryPathFromHashPart(_) => return refuse("queryPathFromHashPart"),
        Q::QueryValidDerivers(_) => return unsupported("queryValidDerivers"),
        Q::QueryRealisation(q) => {
            if r.is_allowed_output(&q.id) {
                query::realisation(s, q).await?
            } else {
                Response::QueryRealisation(RealisationReply::Realisations(BTreeSet::new()))
            }
        }
        Q::QueryMissing(q) => missing(s, r, q).await?,
        Q::HasSubstitutes(q) => substitutes::has_substitutes(s, q).await?,
        Q::QuerySubstitutablePaths(q) => substitutes::substitutable_paths(s, q).await?,
        Q::QuerySubstitutablePathInfo(q) => substitutes::substitutable_path_info(s, q).await?,
        Q::QuerySubstitutablePathInfos(q) => substitutes::substitutable_path_infos(s, q).await?,
        Q::AddToStore(q) => {
            let response = add::add_to_store(s, conn, q).await?;
            if let Response::AddToStore(reply) = &response {
                r.add([reply.path()]).map_err(expose_failed)?;
            }
            response
        }
        Q::AddTextToStore(q) => {
            let response = add::add_text_to_store(s, q).await?;
            if let Response::AddTextToStore(path) = &response {
                r.add([path]).map_err(expose_failed)?;
            }
            response
        }
        Q::AddToStoreNar(q) => {
            let path = q.info.path.clone();
            let response = add::add_to_store_nar(s, conn, q).await?;
            r.add([&path]).map_err(expose_failed)?;
            response
        }
        // Each batch's paths are noted as they are added (`Session::note_added`).
        Q::AddMultipleToStore(q) => add::add_multiple_to_store(s, conn, q).await?,
        Q::ImportPaths(_) => {
            let response = add::import_paths(s, conn).await?;
            if let Response::ImportPaths(paths) = &response {
                r.add(paths).map_err(expose_failed)?;
            }
            response
        }
        Q::ExportPath(q) => {
            require(s, r, &q.path, "dump")?;
            return add::export_path(s, conn, q).await;
        }
        Q::NarFromPath(q) => {
            require(s, r, &q.path, "dump")?;
            return add::nar_from_path(s, conn, q).await;
        }
        Q::EnsurePath(q) => {
            require(s, r, &q.path, "substitute")?;
            Response::EnsurePath
        }
        Q::BuildPaths(q) => {
            let results = realise(s, conn, r, q.paths, q.mode).await?;
            let failures: Vec<_> = results.into_iter().filter_map(|(t, r)| r.err().map(|e| (t, e))).collect();
            if !failures.is_empty() {
                return Err(build::build_error(s, conn, failures).await);
            }
            Response::BuildPaths
        }
        Q::BuildPathsWithResults(q) => {
            let results = realise(s, conn, r, q.paths, q.mode).await?;
            let keyed = results
                .into_iter()
                .map(|(path, result)| {
                    let result = result.unwrap_or_else(|f| BuildResult::new(f.status, f.message));
                    KeyedBuildResult { path, result }
                })
                .collect();
            Response::BuildPathsWithResults(keyed)
        }
        Q::BuildDerivation(_) => return unsupported("buildDerivation"),
        Q::AddTempRoot(_) => Response::AddTempRoot,
        Q::AddIndirectRoot(_) => Response::AddIndirectRoot,
        Q::AddPermRoot(q) => roots::add_perm_root(s, q).await?,
        Q::SyncWithGC(_) => Response::SyncWithGC,
        Q::FindRoots(_) => Response::FindRoots(Default::default()),
        Q::CollectGarbage(_) => Response::CollectGarbage(GcResult::default()),
        Q::OptimiseStore(_) => return unsupported("optimiseStore"),
        Q::VerifyStore(_) => return unsupported("verifyStore"),
        // Nix ignores a recursive client's options (the daemon's settings apply).
        Q::SetOptions(_) => Response::SetOptions,
        Q::AddSignatures(_) => return unsupported("addSignatures"),
        Q::RegisterDrvOutput(_) => return refuse("registerDrvOutput"),
        Q::AddBuildLog(_) => return unsupported("addBuildLog"),
    };
    conn.respond(&response).await?;
    Ok(())
}

/// Nix's "cannot <what> unknown path '…' in recursive Nix" unless `path` is visible.
/// A path added through recursive Nix could not be put into the running sandbox.
fn expose_failed(e: sandbox::SandboxError) -> OpError {
    OpError::Client(e.to_string())
}

fn require(s: &Session, r: &Restriction, path: &nix_formats::store_path::StorePath, what: &str) -> Result<(), OpError> {
    if r.is_allowed(path) {
        return Ok(());
    }
    refuse(format!("cannot {what} unknown path '{}' in recursive Nix", s.print(path)))
}

/// [`require`] for the output map of a derivation.
fn require_drv(s: &Session, r: &Restriction, path: &nix_formats::store_path::StorePath) -> Result<(), OpError> {
    require(s, r, path, "query output map for")
}

/// `QueryMissing`: targets outside the view are unknown.
async fn missing(s: &Session, r: &Restriction, q: QueryMissing) -> Result<Response, OpError> {
    let (allowed, denied): (Vec<_>, Vec<_>) = q.targets.into_iter().partition(|t| r.is_allowed(t.base_store_path()));
    let mut response = query::missing(s, QueryMissing { targets: allowed }).await?;
    if let Response::QueryMissing(found) = &mut response {
        found.unknown.extend(denied.iter().map(|t| t.base_store_path().clone()));
    }
    Ok(response)
}

/// Builds visible targets (normal mode only); the closures of the built outputs and their
/// realisations become visible.
async fn realise<R, W>(
    s: &Session,
    conn: &mut ServerConnection<R, W>,
    r: &Restriction,
    targets: Vec<DerivedPath>,
    mode: BuildMode,
) -> Result<Vec<(DerivedPath, Result<BuildResult, crate::build::BuildFailure>)>, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if mode != BuildMode::Normal {
        return refuse("unsupported build mode");
    }
    for target in &targets {
        if !r.is_allowed(target.base_store_path()) {
            return refuse(format!(
                "cannot build '{}' in recursive Nix because path is unknown",
                target.to_text(s.store.store_dir())
            ));
        }
    }
    let results = build::realise(s, conn, targets, mode).await?;
    let mut outputs = BTreeSet::new();
    let mut ids = Vec::new();
    for result in results.iter().filter_map(|(_, r)| r.as_ref().ok()) {
        for realisation in result.built_outputs.values() {
            outputs.insert(realisation.out_path.clone());
            ids.push(realisation.id.clone());
        }
    }
    let closure = bridge::run(&s.store, move |st| st.closure(outputs.iter(), ClosureOptions::default())).await?;
    r.add(&closure).map_err(expose_failed)?;
    r.add_outputs(ids);
    Ok(results)
}
