//! Serving one request: each operation of the worker protocol, answered from the store as Nix
//! 2.26's daemon answers it (`daemon.cc`, `performOp`).
//!
//! Submodules by group: [`query`] (questions about paths and derivations), [`add`] (adding
//! paths, streaming NARs and exports in and out), [`build`] (realising derivations), [`roots`] (roots, garbage collection,
//! verification), [`other`] (options, signatures, realisations, logs, builds).

pub mod add;
pub mod build;
pub mod other;
pub mod query;
pub mod restricted;
pub mod roots;
pub mod sandboxing;
pub mod substitutes;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::error::ProtocolError;
use worker_protocol::ops::{ClientOptions, Request, Response};

use crate::bridge::BridgeError;
use crate::locations::Locations;
use crate::path_info_cache::{PathInfoCache, STORE_CHANGES};
use crate::peer::Trust;
use crate::settings::Settings;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;
use store::{Store, StoreError};

/// How an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Reported to the client (`STDERR_ERROR`); the connection goes on.
    #[error("{0}")]
    Client(String),
    /// Reported to the client with more than a message (an exit status).
    #[error("{}", .0.message)]
    Remote(worker_protocol::logger::RemoteError),
    /// The connection is out of step or gone: close it.
    #[error(transparent)]
    Connection(#[from] ProtocolError),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Client(e.to_string())
    }
}

impl<E: std::fmt::Display> From<BridgeError<E>> for OpError {
    fn from(e: BridgeError<E>) -> Self {
        match e {
            BridgeError::Work(e) => OpError::Client(e.to_string()),
            BridgeError::Join(e) => OpError::Client(format!("internal error: {e}")),
            BridgeError::Io(e) => OpError::Connection(ProtocolError::from_io(e)),
        }
    }
}

/// A client error with this text.
pub fn refuse<T>(message: impl Into<String>) -> Result<T, OpError> {
    Err(OpError::Client(message.into()))
}

/// What one session knows while serving requests.
#[derive(Debug)]
pub struct Session {
    /// The store, opened for this connection.
    pub store: Arc<Store>,
    /// Whether the client is trusted.
    pub trust: Trust,
    /// The daemon's settings when the connection began.
    pub settings: Arc<Settings>,
    /// Where things are.
    pub locations: Arc<Locations>,
    /// The client's last `SetOptions`.
    pub options: ClientOptions,
    /// For a recursive Nix connection: what it may see ([`restricted`] serves it).
    pub restricted: Option<Arc<crate::build::recursive::Restriction>>,
    /// The path infos this connection answered, for answering them again.
    pub path_infos: Mutex<PathInfoCache>,
}

impl Session {
    /// Whether the client is trusted.
    pub fn trusted(&self) -> bool {
        self.trust == Trust::Trusted
    }

    /// Records paths a request added: a recursive Nix connection may see them afterwards.
    pub fn note_added<'a>(&self, paths: impl IntoIterator<Item = &'a nix_formats::store_path::StorePath>) -> Result<(), OpError> {
        if let Some(restriction) = &self.restricted {
            restriction.add(paths).map_err(|e| OpError::Client(e.to_string()))?;
        }
        Ok(())
    }

    /// The store's printed form of `path`.
    pub fn print(&self, path: &nix_formats::store_path::StorePath) -> String {
        self.store.print(path)
    }

    /// The info of `path` if it is valid: remembered from an earlier answer of this connection
    /// when the store has not changed since, else read from the database (and remembered).
    pub fn path_info(&self, path: &StorePath) -> Result<Option<Arc<ValidPathInfo>>, StoreError> {
        let mut cache = self.path_infos.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(info) = cache.get(path) {
            return Ok(Some(info));
        }
        let mark = cache.mark();
        let Some(info) = self.store.query_path_info(path)? else { return Ok(None) };
        let info = Arc::new(info);
        cache.remember(mark, Arc::clone(&info));
        Ok(Some(info))
    }

    /// Whether `path` is valid: remembered (see [`Self::path_info`]), else asked of the
    /// database with its cheaper validity query (as Nix's `isValidPath`, which does not fill
    /// its memory either).
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        let remembered = self.path_infos.lock().unwrap_or_else(PoisonError::into_inner).get(path).is_some();
        Ok(remembered || self.store.is_valid(path)?)
    }
}

/// Whether `request` may change the store's paths or their infos (then every connection's
/// remembered path infos are forgotten when it starts and when it ends).
fn changes_store(request: &Request) -> bool {
    use Request as Q;
    !matches!(
        request,
        Q::IsValidPath(_)
            | Q::HasSubstitutes(_)
            | Q::QueryPathHash(_)
            | Q::QueryReferences(_)
            | Q::QueryReferrers(_)
            | Q::QueryDeriver(_)
            | Q::QueryValidDerivers(_)
            | Q::QueryDerivationOutputs(_)
            | Q::QueryDerivationOutputNames(_)
            | Q::QueryDerivationOutputMap(_)
            | Q::QueryPathInfo(_)
            | Q::QueryPathFromHashPart(_)
            | Q::QueryAllValidPaths(_)
            | Q::QueryValidPaths(_)
            | Q::QuerySubstitutablePaths(_)
            | Q::QuerySubstitutablePathInfo(_)
            | Q::QuerySubstitutablePathInfos(_)
            | Q::QueryMissing(_)
            | Q::QueryRealisation(_)
            | Q::ExportPath(_)
            | Q::NarFromPath(_)
            | Q::AddTempRoot(_)
            | Q::AddIndirectRoot(_)
            | Q::AddPermRoot(_)
            | Q::SyncWithGC(_)
            | Q::FindRoots(_)
            | Q::SetOptions(_)
            | Q::RegisterDrvOutput(_)
            | Q::AddBuildLog(_)
    )
}

/// Serves `request`, answering it on `conn` (or returning the error to report).
pub async fn perform<R, W>(s: &mut Session, conn: &mut ServerConnection<R, W>, request: Request) -> Result<(), OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let change = changes_store(&request).then(|| STORE_CHANGES.begin());
    if let Some(restriction) = s.restricted.clone() {
        return restricted::perform(s, conn, request, &restriction).await;
    }
    use Request as Q;
    let response = match request {
        Q::IsValidPath(r) => query::is_valid_path(s, r).await?,
        Q::HasSubstitutes(r) => substitutes::has_substitutes(s, r).await?,
        Q::QueryPathHash(r) => query::path_hash(s, r).await?,
        Q::QueryReferences(r) => query::references(s, r).await?,
        Q::QueryReferrers(r) => query::referrers(s, r).await?,
        Q::QueryDeriver(r) => query::deriver(s, r).await?,
        Q::QueryValidDerivers(r) => query::valid_derivers(s, r).await?,
        Q::QueryDerivationOutputs(r) => query::derivation_outputs(s, r).await?,
        Q::QueryDerivationOutputNames(r) => query::derivation_output_names(s, r).await?,
        Q::QueryDerivationOutputMap(r) => query::derivation_output_map(s, r).await?,
        Q::QueryPathInfo(r) => query::path_info(s, conn.version(), r).await?,
        Q::QueryPathFromHashPart(r) => query::path_from_hash_part(s, r).await?,
        Q::QueryAllValidPaths(_) => query::all_valid_paths(s).await?,
        Q::QueryValidPaths(r) => query::valid_paths(s, r).await?,
        Q::QuerySubstitutablePaths(r) => substitutes::substitutable_paths(s, r).await?,
        Q::QuerySubstitutablePathInfo(r) => substitutes::substitutable_path_info(s, r).await?,
        Q::QuerySubstitutablePathInfos(r) => substitutes::substitutable_path_infos(s, r).await?,
        Q::QueryMissing(r) => query::missing(s, r).await?,
        Q::QueryRealisation(r) => query::realisation(s, r).await?,
        Q::AddToStore(r) => add::add_to_store(s, conn, r).await?,
        Q::AddTextToStore(r) => add::add_text_to_store(s, r).await?,
        Q::AddToStoreNar(r) => add::add_to_store_nar(s, conn, r).await?,
        Q::AddMultipleToStore(r) => add::add_multiple_to_store(s, conn, r).await?,
        Q::ImportPaths(_) => add::import_paths(s, conn).await?,
        Q::ExportPath(r) => return add::export_path(s, conn, r).await,
        Q::NarFromPath(r) => return add::nar_from_path(s, conn, r).await,
        Q::AddTempRoot(r) => roots::add_temp_root(s, r).await?,
        Q::AddIndirectRoot(r) => roots::add_indirect_root(s, r).await?,
        Q::AddPermRoot(r) => roots::add_perm_root(s, r).await?,
        Q::SyncWithGC(_) => Response::SyncWithGC,
        Q::FindRoots(_) => roots::find_roots(s, conn).await?,
        Q::CollectGarbage(r) => roots::collect_garbage(s, conn, r).await?,
        Q::OptimiseStore(_) => roots::optimise_store(s, conn).await?,
        Q::VerifyStore(r) => roots::verify_store(s, conn, r).await?,
        Q::SetOptions(options) => other::set_options(s, conn, options).await?,
        Q::AddSignatures(r) => other::add_signatures(s, r).await?,
        Q::RegisterDrvOutput(r) => other::register_drv_output(s, r).await?,
        Q::AddBuildLog(r) => other::add_build_log(s, conn, r).await?,
        Q::EnsurePath(r) => build::ensure_path(s, conn, r).await?,
        Q::BuildPaths(r) => build::build_paths(s, conn, r).await?,
        Q::BuildPathsWithResults(r) => build::build_paths_with_results(s, conn, r).await?,
        Q::BuildDerivation(r) => build::build_derivation(s, conn, r).await?,
    };
    // The change is over before the client hears so: a connection that asks next, on the
    // client's word that it is done, must not remember under a mark the end of this change
    // would then move (it forgot what it had just learnt).
    drop(change);
    conn.respond(&response).await?;
    Ok(())
}
