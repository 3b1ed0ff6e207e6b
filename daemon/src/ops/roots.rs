//! Roots, garbage collection and store maintenance: `AddTempRoot`, `AddIndirectRoot`,
//! `AddPermRoot`, `FindRoots`, `CollectGarbage`, `OptimiseStore`, `VerifyStore`.

use std::path::{Path, PathBuf};

use store::gc::{GcAction as StoreGcAction, GcOptions};
use store::local::PathProblem;
use tokio::io::{AsyncRead, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::logger::Verbosity;
use worker_protocol::ops::request::gc::*;
use worker_protocol::ops::response::GcResult;
use worker_protocol::ops::Response;

use super::{refuse, OpError, Session};
use crate::bridge;

/// `link` made absolute against the daemon's working directory (Nix's `absPath`), without
/// resolving symlinks.
fn absolute(link: &str) -> PathBuf {
    let path = Path::new(link);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
}

/// `AddTempRoot`: the path stays alive while the connection lasts.
pub async fn add_temp_root(s: &Session, r: AddTempRoot) -> Result<Response, OpError> {
    bridge::run(&s.store, move |st| st.add_temp_root(&r.path)).await?;
    Ok(Response::AddTempRoot)
}

/// `AddIndirectRoot`.
pub async fn add_indirect_root(s: &Session, r: AddIndirectRoot) -> Result<Response, OpError> {
    let link = absolute(&r.link);
    bridge::run(&s.store, move |st| st.add_indirect_root(&link)).await?;
    Ok(Response::AddIndirectRoot)
}

/// `AddPermRoot`: trusted clients only, as in Nix.
pub async fn add_perm_root(s: &Session, r: AddPermRoot) -> Result<Response, OpError> {
    if !s.trusted() {
        return refuse(
            "you are not privileged to create perm roots\n\n\
             hint: you can just do this client-side without special privileges, and probably want to do that instead.",
        );
    }
    let root = absolute(&r.gc_root);
    let made = bridge::run(&s.store, move |st| st.add_perm_root(&r.path, &root)).await?;
    Ok(Response::AddPermRoot(made.to_string_lossy().into_owned()))
}

/// `FindRoots`: untrusted clients see where roots are only as `{censored}`.
pub async fn find_roots<R, W>(s: &Session, conn: &mut ServerConnection<R, W>) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let censor = !s.trusted();
    let roots = bridge::with_logs(&s.store, conn.logger(), move |st, tx| {
        st.find_roots_reporting(censor, &mut |line| tx.line(Verbosity::Info, line))
    })
    .await?;
    Ok(Response::FindRoots(roots))
}

/// `CollectGarbage` with the daemon's `keep-outputs`/`keep-derivations`; what the collector
/// does is logged to the client as Nix logs it.
pub async fn collect_garbage<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: CollectGarbage) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if r.ignore_liveness {
        return refuse("you are not allowed to ignore liveness");
    }
    let action = match r.action {
        GcAction::ReturnLive => StoreGcAction::ReturnLive,
        GcAction::ReturnDead => StoreGcAction::ReturnDead,
        GcAction::DeleteDead => StoreGcAction::DeleteDead,
        GcAction::DeleteSpecific => StoreGcAction::DeleteSpecific(r.paths_to_delete),
    };
    let mut options = GcOptions::new(action);
    options.max_freed = r.max_freed;
    options.keep_outputs = s.settings.keep_outputs;
    options.keep_derivations = s.settings.keep_derivations;
    let result = bridge::with_logs(&s.store, conn.logger(), move |st, tx| {
        st.collect_garbage_reporting(&options, &mut |line| {
            tx.line(Verbosity::Info, line);
        })
    })
    .await?;
    Ok(Response::CollectGarbage(GcResult {
        paths: result.printed(s.store.store_dir()),
        bytes_freed: result.bytes_freed,
    }))
}

/// `OptimiseStore`: casnix stores every file once already (the blob pool), so there is
/// nothing to link; it says so as Nix words it.
pub async fn optimise_store<R, W>(_s: &Session, conn: &mut ServerConnection<R, W>) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    conn.logger().log(Verbosity::Info, "0.00 MiB freed by hard-linking 0 files").await?;
    Ok(Response::OptimiseStore)
}

/// `VerifyStore`: repair is for trusted clients. Problems are reported as Nix words them;
/// the reply says whether any remain.
pub async fn verify_store<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: VerifyStore) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if r.repair && !s.trusted() {
        return refuse("you are not privileged to repair paths");
    }
    conn.logger().log(Verbosity::Info, "reading the Nix store...").await?;
    conn.logger().log(Verbosity::Info, "checking path existence...").await?;
    if r.check_contents {
        conn.logger().log(Verbosity::Info, "checking link hashes...").await?;
        conn.logger().log(Verbosity::Info, "checking store hashes...").await?;
    }
    let report = bridge::run(&s.store, move |st| st.verify_store(r.check_contents, r.repair)).await?;
    for (path, problem) in &report.problems {
        let printed = s.print(path);
        let line = match problem {
            PathProblem::Missing => format!("path '{printed}' disappeared, but it still has valid referrers!"),
            PathProblem::HashMismatch { expected, got } => format!(
                "path '{printed}' was modified! expected hash '{}', got '{}'",
                expected.encode(nix_formats::hash::Encoding::Nix32, true),
                got.encode(nix_formats::hash::Encoding::Nix32, true)
            ),
            PathProblem::SizeMismatch { expected, got } => {
                format!("path '{printed}' was modified! expected size {expected}, got {got}")
            }
        };
        conn.logger().log(Verbosity::Error, line).await?;
        // With repair, what could not be restored is reported as Nix reports it (it has only
        // substituters to repair from; casnix has the castore too).
        if r.repair && !report.repaired.contains(path) && !report.invalidated.contains(path) {
            conn.logger().log(Verbosity::Error, format!("\x1b[31;1merror:\x1b[0m cannot repair path '{printed}'")).await?;
        }
    }
    Ok(Response::VerifyStore(!report.is_ok()))
}
