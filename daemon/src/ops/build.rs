//! The build operations: `BuildPaths`, `BuildPathsWithResults`, `BuildDerivation`,
//! `EnsurePath`, served by [`crate::build::Builder`], with the backend `sandbox` and
//! `sandbox-backend` choose ([`super::sandboxing`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::derivation::DerivationOutput;
use nix_formats::derived_path::DerivedPath;
use nix_formats::signature::SecretKey;
use tokio::io::{AsyncRead, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::logger::RemoteError;
use worker_protocol::ops::request::build::*;
use worker_protocol::ops::Response;
use worker_protocol::types::BuildMode;

use super::other::{error_text, warning};
use super::{refuse, OpError, Session};
use crate::bridge;
use crate::build::schedule::goal_key;
use crate::build::{BuildFailure, BuildSettings, Builder};

/// The keys named by `secret-key-files`.
fn secret_keys(s: &Session) -> Result<Vec<SecretKey>, OpError> {
    let mut keys = Vec::new();
    for file in s.settings.raw.get("secret-key-files").unwrap_or("").split_whitespace() {
        let text = std::fs::read_to_string(file)
            .map_err(|e| OpError::Client(format!("reading secret key file '{file}': {e}")))?;
        keys.push(
            SecretKey::parse(text.trim()).map_err(|e| OpError::Client(format!("secret key file '{file}': {e}")))?,
        );
    }
    Ok(keys)
}

/// The settings of a build for this session: the daemon's, with what the client's
/// `SetOptions` may change.
fn build_settings(s: &Session) -> Result<BuildSettings, OpError> {
    let raw = &s.settings.raw;
    let seconds = |name: &str| raw.get(name).and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0);
    let option = |name: &str| s.options.overrides.get(name).and_then(|v| v.parse::<u64>().ok());
    let timeout = option("timeout").or_else(|| seconds("timeout")).filter(|n| *n > 0);
    let silent = match s.options.max_silent_time {
        0 => option("max-silent-time").or_else(|| seconds("max-silent-time")).filter(|n| *n > 0),
        n => Some(u64::from(n)),
    };
    let cores = match s.options.build_cores {
        0 => s.settings.cores,
        n => n,
    };
    // As Nix's daemon: the client's `max-jobs` (every client sends it) rules its requests.
    // casnix's own `casnix-max-jobs-total` caps the builds of all clients together (default:
    // no cap, as Nix's daemon has none; see `build::schedule`).
    let total = raw.get("casnix-max-jobs-total").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0);
    crate::build::schedule::daemon_slots().set_capacity(total.unwrap_or(usize::MAX));
    Ok(BuildSettings {
        max_jobs: s.options.max_build_jobs,
        substituters: super::substitutes::session_substituters(s),
        fallback: s.options.try_fallback,
        auto_optimise: raw.get("auto-optimise-store") == Some("true"),
        cores,
        system: raw.get("system").map_or_else(|| format!("{}-linux", std::env::consts::ARCH), str::to_owned),
        build_dir_parent: raw
            .get("build-dir")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("TMPDIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/tmp")),
        timeout: timeout.map(Duration::from_secs),
        max_silent_time: silent.map(Duration::from_secs),
        keep_failed: s.options.keep_failed,
        keep_going: s.options.keep_going,
        check: false,
        verbose_client: false,
        nix_command: s.settings.experimental_features.iter().any(|f| f == "nix-command"),
        log_dir: s.locations.log_dir.clone(),
        secret_keys: secret_keys(s)?,
        post_build_hook: raw.get("post-build-hook").map(str::to_owned),
        nix_config: raw.to_key_value(),
        ca_derivations: s.settings.experimental_features.iter().any(|f| f == "ca-derivations"),
        impure_derivations: s.settings.experimental_features.iter().any(|f| f == "impure-derivations"),
        recursive: Some(crate::build::recursive::RecursiveContext {
            store: Arc::clone(&s.store),
            settings: Arc::clone(&s.settings),
            locations: Arc::clone(&s.locations),
        }),
        impure_env: raw
            .get("impure-env")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    })
}

/// Runs `targets` through a [`Builder`], with its log messages going to the client.
pub(super) async fn realise<R, W>(
    s: &Session,
    conn: &mut ServerConnection<R, W>,
    targets: Vec<DerivedPath>,
    mode: BuildMode,
) -> Result<Vec<(DerivedPath, Result<BuildResult, BuildFailure>)>, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut settings = build_settings(s)?;
    settings.check = mode == BuildMode::Check;
    let session_settings = Arc::clone(&s.settings);
    let results = bridge::with_logs(&s.store, conn.logger(), move |st, tx| {
        let (backend, backend_warning) = match super::sandboxing::choose(&session_settings, st) {
            Ok(chosen) => chosen,
            Err(e) => {
                let failure = BuildFailure::misc(e);
                return Ok(targets.into_iter().map(|t| (t, Err(failure.clone()))).collect());
            }
        };
        if let Some(text) = backend_warning.filter(|_| !targets.is_empty()) {
            tx.line(worker_protocol::logger::Verbosity::Warn, warning(&text));
        }
        let builder = Builder::new(st, backend.as_ref(), &settings, tx);
        let results = builder.realise_all(&targets);
        Ok::<_, std::convert::Infallible>(targets.into_iter().zip(results).collect::<Vec<_>>())
    })
    .await?;
    // Nix's worker throws this one: the operation fails, whatever else was done.
    if let Some(failure) = results.iter().find_map(|(_, r)| r.as_ref().err().filter(|f| f.ends_request())) {
        return Err(OpError::Remote(RemoteError::new(failure.message.clone())));
    }
    Ok(results)
}

/// The error for failed targets, as Nix's `Store::buildPaths`: its goals are a set in goal-key
/// order; the first failure with a message is kept, later ones are logged as they come. One
/// failed target is reported as its own error; several as a list of their derivations (the
/// kept failure logged first).
pub(super) async fn build_error<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, mut failures: Vec<(DerivedPath, BuildFailure)>) -> OpError
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let store_dir = s.store.store_dir();
    failures.sort_by_key(|(t, _)| goal_key(t));
    let status = failing_exit_status(failures.iter().map(|(_, f)| f));
    let mut kept: Option<&BuildFailure> = None;
    let mut to_log = Vec::new();
    for (_, failure) in &failures {
        if failure.message.is_empty() {
            continue;
        }
        match kept {
            None => kept = Some(failure),
            Some(_) => to_log.push(failure.message.as_str()),
        }
    }
    let names: std::collections::BTreeSet<String> = failures
        .iter()
        .map(|(t, _)| match t {
            DerivedPath::Opaque(p) => format!("'{}'", store_dir.print(p)),
            DerivedPath::Built { drv_path, .. } => format!("'{}'", store_dir.print(drv_path.base_store_path())),
        })
        .collect();
    if let (1, Some(failure)) = (names.len(), kept) {
        return OpError::Remote(RemoteError::new(failure.message.clone()).with_status(status));
    }
    to_log.extend(kept.map(|f| f.message.as_str()));
    for message in to_log {
        if let Err(e) = conn.logger().log(worker_protocol::logger::Verbosity::Error, error_text(message)).await {
            return OpError::Connection(e);
        }
    }
    OpError::Remote(
        RemoteError::new(format!("build of {} failed", names.into_iter().collect::<Vec<_>>().join(", "))).with_status(status),
    )
}

/// The exit status a client ends with after these failures (Nix's `Worker::failingExitStatus`:
/// 100 plus bits for a timeout, a hash mismatch; 104 for a `--check` mismatch; else 1).
fn failing_exit_status<'a>(failures: impl Iterator<Item = &'a BuildFailure>) -> u32 {
    let mut mask = 0;
    for failure in failures {
        mask |= match failure.exit_status() {
            100 => 0x04,
            101 => 0x05,
            102 => 0x06,
            104 => 0x08,
            _ => 0,
        };
    }
    if mask == 0 {
        1
    } else {
        mask | 0x60
    }
}

fn check_repair(s: &Session, mode: BuildMode) -> Result<(), OpError> {
    if mode == BuildMode::Repair && !s.trusted() {
        return refuse("repairing is not allowed because you are not in 'trusted-users'");
    }
    Ok(())
}

/// `EnsurePath`: valid already, substituted, or an error.
pub async fn ensure_path<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: EnsurePath) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let results = realise(s, conn, vec![DerivedPath::Opaque(r.path)], BuildMode::Normal).await?;
    let failures: Vec<_> = results.into_iter().filter_map(|(t, r)| r.err().map(|e| (t, e))).collect();
    if failures.is_empty() {
        Ok(Response::EnsurePath)
    } else {
        Err(build_error(s, conn, failures).await)
    }
}

/// `BuildPaths`.
pub async fn build_paths<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: BuildPaths) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    check_repair(s, r.mode)?;
    let results = realise(s, conn, r.paths, r.mode).await?;
    let failures: Vec<_> = results.into_iter().filter_map(|(t, r)| r.err().map(|e| (t, e))).collect();
    if failures.is_empty() {
        Ok(Response::BuildPaths)
    } else {
        Err(build_error(s, conn, failures).await)
    }
}

/// `BuildPathsWithResults`: failures are results, not errors.
pub async fn build_paths_with_results<R, W>(
    s: &Session,
    conn: &mut ServerConnection<R, W>,
    r: BuildPathsWithResults,
) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    check_repair(s, r.mode)?;
    let results = realise(s, conn, r.paths, r.mode).await?;
    let keyed = results
        .into_iter()
        .map(|(path, result)| {
            let result = result.unwrap_or_else(|f| BuildResult::new(f.status, f.message));
            KeyedBuildResult { path, result }
        })
        .collect();
    Ok(Response::BuildPathsWithResults(keyed))
}

/// `BuildDerivation`: a derivation sent by the client (not read from the store), built with its
/// inputs as given. Untrusted clients may only build content-addressed ones, as in Nix.
pub async fn build_derivation<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: BuildDerivation) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let drv = r.drv.into_derivation();
    let content_addressed = drv.outputs.values().all(|o| !matches!(o, DerivationOutput::InputAddressed(_)));
    if !content_addressed && !s.trusted() {
        return refuse("you are not privileged to build input-addressed derivations");
    }
    let settings = build_settings(s)?;
    let drv_path = r.drv_path;
    let session_settings = Arc::clone(&s.settings);
    let result = bridge::with_logs(&s.store, conn.logger(), move |st, tx| {
        let backend = match super::sandboxing::choose(&session_settings, st) {
            Ok((backend, warning_text)) => {
                if let Some(text) = warning_text {
                    tx.line(worker_protocol::logger::Verbosity::Warn, warning(&text));
                }
                backend
            }
            Err(e) => return Ok(Ok(BuildResult::new(BuildStatus::MiscFailure, e))),
        };
        let builder = Builder::new(st, backend.as_ref(), &settings, tx);
        let result = match builder.build_given(&drv_path, &drv) {
            Ok(built) => {
                let mut result = BuildResult::new(built.status, "");
                let all = nix_formats::derived_path::OutputsSpec::All;
                result.built_outputs = builder.realisations(&drv, &built, &all).unwrap_or_default();
                result
            }
            Err(f) if f.ends_request() => return Ok(Err(f.message)),
            Err(f) => BuildResult::new(f.status, f.message),
        };
        Ok::<_, std::convert::Infallible>(Ok(result))
    })
    .await?
    .map_err(|message| OpError::Remote(RemoteError::new(message)))?;
    Ok(Response::BuildDerivation(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: BuildStatus, message: &str) -> BuildFailure {
        BuildFailure { status, message: message.to_owned() }
    }

    #[test]
    fn exit_status_combines_failures_as_nix_does() {
        let permanent = failure(BuildStatus::PermanentFailure, "builder failed");
        let timed_out = failure(BuildStatus::TimedOut, "timed out");
        let mismatch = failure(BuildStatus::OutputRejected, "hash mismatch in fixed-output derivation");
        let other = failure(BuildStatus::MiscFailure, "something");
        assert_eq!(failing_exit_status([&other].into_iter()), 1);
        assert_eq!(failing_exit_status([&permanent, &other].into_iter()), 100);
        assert_eq!(failing_exit_status([&timed_out].into_iter()), 101);
        assert_eq!(failing_exit_status([&mismatch].into_iter()), 102);
        assert_eq!(failing_exit_status([&timed_out, &mismatch].into_iter()), 103);
        assert_eq!(failing_exit_status([&failure(BuildStatus::NotDeterministic, "x")].into_iter()), 104);
    }
}
