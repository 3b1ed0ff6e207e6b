//! Options, signatures, realisations, build logs, and the build operations (which casnix
//! serves once its builder exists: until then what is already valid succeeds, and anything
//! that needs building gets a clear error).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use store::{Store, StoreError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::logger::Verbosity;
use worker_protocol::ops::request::add::{AddBuildLog, AddSignatures, RegisterDrvOutput};
use worker_protocol::ops::request::build::*;
use worker_protocol::ops::set_options::{filter_substituters, override_policy, untrusted_substituter_warning, OverridePolicy};
use worker_protocol::ops::{ClientOptions, Response};
use worker_protocol::types::BuildMode;

use super::query::read_derivation;
use super::{refuse, OpError, Session};
use crate::bridge;

/// The largest build log accepted from a client.
const MAX_BUILD_LOG: u64 = 256 << 20;

/// Nix's warning prefix (`warning:` in bold yellow).
fn warning(text: &str) -> String {
    format!("\x1b[35;1mwarning:\x1b[0m {text}")
}

/// `SetOptions`: kept for this connection; settings an untrusted client may not change are
/// ignored with Nix's warnings.
pub async fn set_options<R, W>(s: &mut Session, conn: &mut ServerConnection<R, W>, options: ClientOptions) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let trusted = s.trusted();
    for (name, value) in &options.overrides {
        match override_policy(name, value, trusted) {
            OverridePolicy::Apply | OverridePolicy::IgnoreSilently => {}
            OverridePolicy::IgnoreWithWarning(text) => {
                conn.logger().log(Verbosity::Warn, warning(&text)).await?;
            }
            OverridePolicy::FilterSubstituters => {
                let known: BTreeSet<String> =
                    s.settings.substituters.iter().chain(&s.settings.trusted_substituters).cloned().collect();
                for url in filter_substituters(value, &known).1 {
                    conn.logger().log(Verbosity::Warn, warning(&untrusted_substituter_warning(&url))).await?;
                }
            }
        }
    }
    s.options = options;
    Ok(Response::SetOptions)
}

/// `AddSignatures`: to a valid path.
pub async fn add_signatures(s: &Session, r: AddSignatures) -> Result<Response, OpError> {
    bridge::run(&s.store, move |st| {
        if !st.is_valid(&r.path)? {
            return Err(StoreError::InvalidPath(st.print(&r.path)));
        }
        st.db().add_signatures(&r.path, &r.sigs).map_err(StoreError::from)
    })
    .await?;
    Ok(Response::AddSignatures)
}

/// `RegisterDrvOutput` (Nix's daemon registers it without a signature check).
pub async fn register_drv_output(s: &Session, r: RegisterDrvOutput) -> Result<Response, OpError> {
    bridge::run(&s.store, move |st| st.db().register_realisation(&r.realisation).map_err(StoreError::from)).await?;
    Ok(Response::RegisterDrvOutput)
}

/// Where Nix keeps the log of `drv_base` (`<log_dir>/drvs/<2 chars>/<rest>.bz2`).
pub fn build_log_path(log_dir: &Path, drv_base: &str) -> PathBuf {
    let (head, tail) = drv_base.split_at(drv_base.len().min(2));
    log_dir.join("drvs").join(head).join(format!("{tail}.bz2"))
}

/// Writes a build log as Nix does: bzip2-compressed, written to a temporary and renamed; an
/// existing log is kept.
fn write_build_log(log_dir: &Path, drv_base: &str, log: &[u8]) -> Result<(), StoreError> {
    let path = build_log_path(log_dir, drv_base);
    if path.exists() {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(log_dir);
    std::fs::create_dir_all(parent).map_err(StoreError::io("creating directory", parent))?;
    let temp = path.with_extension(format!("bz2.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let file = std::fs::File::create(&temp)?;
        let mut encoder = bzip2::write::BzEncoder::new(file, bzip2::Compression::best());
        encoder.write_all(log)?;
        encoder.finish()?.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        StoreError::io("writing build log", &path)(e)
    })
}

/// `AddBuildLog`: trusted clients only.
pub async fn add_build_log<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: AddBuildLog) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !s.trusted() {
        return refuse("you are not privileged to add logs");
    }
    let mut log = Vec::new();
    conn.payload()?.take(MAX_BUILD_LOG + 1).read_to_end(&mut log).await.map_err(worker_protocol::ProtocolError::from_io)?;
    if log.len() as u64 > MAX_BUILD_LOG {
        return refuse(format!("build log larger than {MAX_BUILD_LOG} bytes"));
    }
    let log_dir = s.locations.log_dir.clone();
    let base = r.drv_path.to_string();
    bridge::run(&s.store, move |_| write_build_log(&log_dir, &base, &log)).await?;
    Ok(Response::AddBuildLog)
}

/// `EnsurePath`: there are no substituters, so a path is either valid or an error.
pub async fn ensure_path(s: &Session, r: EnsurePath) -> Result<Response, OpError> {
    let path = r.path;
    let check = path.clone();
    if bridge::run(&s.store, move |st| st.is_valid(&check)).await? {
        return Ok(Response::EnsurePath);
    }
    refuse(format!("path '{}' is required, but there is no substituter that can build it", s.print(&path)))
}

/// Whether `target` needs nothing built: an opaque path that is valid, or a derivation whose
/// wanted outputs are all valid.
fn is_satisfied(st: &Store, target: &DerivedPath) -> Result<bool, StoreError> {
    match target {
        DerivedPath::Opaque(path) => st.is_valid(path),
        DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv_path), outputs } => {
            if !st.is_valid(drv_path)? {
                return Ok(false);
            }
            let drv = read_derivation(st, drv_path)?;
            let known = st.query_derivation_outputs(drv_path)?;
            for name in drv.outputs.keys() {
                if let OutputsSpec::Names(names) = outputs {
                    if !names.contains(name) {
                        continue;
                    }
                }
                match known.get(name) {
                    Some(path) if st.is_valid(path)? => {}
                    _ => return Ok(false),
                }
            }
            Ok(true)
        }
        DerivedPath::Built { .. } => Ok(false),
    }
}

/// The first target that needs building, printed, if any.
async fn first_unsatisfied(s: &Session, targets: Vec<DerivedPath>) -> Result<Option<String>, OpError> {
    let store_dir = s.store.store_dir().clone();
    Ok(bridge::run(&s.store, move |st| {
        for target in &targets {
            if !is_satisfied(st, target)? {
                return Ok(Some(target.to_text(&store_dir)));
            }
        }
        Ok::<_, StoreError>(None)
    })
    .await?)
}

fn cannot_build(what: &str) -> OpError {
    OpError::Client(format!("casnix-daemon cannot build yet, and '{what}' is not valid"))
}

fn check_repair(s: &Session, mode: BuildMode) -> Result<(), OpError> {
    if mode == BuildMode::Repair && !s.trusted() {
        return refuse("repairing is not allowed because you are not in 'trusted-users'");
    }
    Ok(())
}

/// `BuildPaths`.
pub async fn build_paths(s: &Session, r: BuildPaths) -> Result<Response, OpError> {
    check_repair(s, r.mode)?;
    match first_unsatisfied(s, r.paths).await? {
        None => Ok(Response::BuildPaths),
        Some(what) => Err(cannot_build(&what)),
    }
}

/// `BuildPathsWithResults`.
pub async fn build_paths_with_results(s: &Session, r: BuildPathsWithResults) -> Result<Response, OpError> {
    check_repair(s, r.mode)?;
    if let Some(what) = first_unsatisfied(s, r.paths.clone()).await? {
        return Err(cannot_build(&what));
    }
    let results = r
        .paths
        .into_iter()
        .map(|path| KeyedBuildResult { path, result: BuildResult::new(BuildStatus::AlreadyValid, "") })
        .collect();
    Ok(Response::BuildPathsWithResults(results))
}

/// `BuildDerivation`.
pub async fn build_derivation(s: &Session, r: BuildDerivation) -> Result<Response, OpError> {
    Err(cannot_build(&s.print(&r.drv_path)))
}
