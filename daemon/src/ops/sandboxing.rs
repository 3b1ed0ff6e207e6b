//! Which sandbox backend builds run in: `sandbox = false` (or `sandbox-backend = none`) runs
//! builders on the host, `native` in casnix's own namespaces (the daemon's executable is the
//! helper, see `sandbox::native::helper::dispatch`), `oci` in runc containers (state under
//! [`oci_state_dir`]), with `sandbox-paths` and their store closures exposed as Nix exposes
//! them; as root with `build-users-group`, builders run as free members of that group.

use std::sync::Arc;

use nix_formats::store_path::StorePath;
use sandbox::plan::{HostIds, SandboxConfig, SandboxMode, SandboxPath, SANDBOX_BUILD_DIR};
use sandbox::userpool::UserPool;
use sandbox::{Backend, NativeSandbox, NoSandbox, OciBackend};
use store::db::ClosureOptions;
use store::Store;

use crate::settings::Settings;

/// The backend for builds under `settings`, and a warning for the client if builds will not
/// be sandboxed although `sandbox` asks for it.
///
/// A diverted store (its files elsewhere than its store directory says, as a `local?root=…`
/// store) builds in a sandbox whatever `sandbox` says, as Nix does: only there do the paths a
/// builder sees exist.
pub fn choose(settings: &Settings, st: &Store) -> Result<(Arc<dyn Backend>, Option<String>), String> {
    let diverted = st.real_store_dir() != std::path::Path::new(st.store_dir().as_str());
    let mode = match settings.sandbox.as_str() {
        "false" if !diverted => return Ok((Arc::new(unsandboxed(settings, st)?), None)),
        "relaxed" => SandboxMode::Relaxed,
        _ => SandboxMode::Enabled,
    };
    match settings.sandbox_backend.as_str() {
        "none" if diverted => Err(format!(
            "building in a diverted store ('{}' in '{}') needs a sandbox, but 'sandbox-backend' is 'none'",
            st.store_dir().as_str(),
            st.real_store_dir().display()
        )),
        "none" => Ok((Arc::new(unsandboxed(settings, st)?), None)),
        "native" => {
            let config = config(settings, st, mode)?;
            let mut backend = NativeSandbox::embedded(config).map_err(|e| e.to_string())?;
            if let Some(pool) = build_users(settings, st)? {
                backend = backend.with_build_users(pool);
            }
            Ok((Arc::new(backend), None))
        }
        "oci" => {
            let config = config(settings, st, mode)?;
            let mut backend = OciBackend::new(&oci_state_dir(st), config).map_err(|e| e.to_string())?;
            if let Some(pool) = build_users(settings, st)? {
                backend = backend.with_build_users(pool);
            }
            Ok((Arc::new(backend), None))
        }
        other => Ok((
            Arc::new(unsandboxed(settings, st)?),
            Some(format!("casnix-daemon has no '{other}' sandbox backend yet; building without a sandbox")),
        )),
    }
}

/// The `none` backend, with build users when there are.
fn unsandboxed(settings: &Settings, st: &Store) -> Result<NoSandbox, String> {
    Ok(match build_users(settings, st)? {
        Some(pool) => NoSandbox::default().with_build_users(pool),
        None => NoSandbox::default(),
    })
}

/// What a [`UserPool`] was made from: the group, the lock and store directories, and when
/// the group and user databases last changed.
type PoolKey = (String, std::path::PathBuf, std::path::PathBuf, Option<std::time::SystemTime>, Option<std::time::SystemTime>);

/// Nix's build users: only when running as root with `build-users-group` set. As Nix's local
/// store does then, the store directory becomes root's and the build group's with mode 1775,
/// so that builders running unsandboxed (`sandbox = false`, or a sandbox's fallback) can
/// create their outputs in it. Made once for the same settings (and again when `/etc/group`
/// or `/etc/passwd` changed), not for every build.
fn build_users(settings: &Settings, st: &Store) -> Result<Option<Arc<UserPool>>, String> {
    static POOLS: std::sync::Mutex<Vec<(PoolKey, Arc<UserPool>)>> = std::sync::Mutex::new(Vec::new());
    if settings.build_users_group.is_empty() || !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let changed = |path: &str| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let key: PoolKey = (
        settings.build_users_group.clone(),
        st.state_dir().join("userpool"),
        st.real_store_dir().to_owned(),
        changed("/etc/group"),
        changed("/etc/passwd"),
    );
    let mut pools = POOLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, pool)) = pools.iter().find(|(k, _)| *k == key) {
        return Ok(Some(pool.clone()));
    }
    let pool = new_build_users(settings, st)?;
    pools.retain(|(k, _)| (&k.0, &k.1, &k.2) != (&key.0, &key.1, &key.2));
    pools.push((key, pool.clone()));
    Ok(Some(pool))
}

/// [`build_users`] made afresh.
fn new_build_users(settings: &Settings, st: &Store) -> Result<Arc<UserPool>, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let pool = UserPool::new(&settings.build_users_group, st.state_dir().join("userpool")).map_err(|e| e.to_string())?;
    let store_dir = st.real_store_dir();
    let meta = std::fs::metadata(store_dir).map_err(|e| format!("reading '{}': {e}", store_dir.display()))?;
    if (meta.uid(), meta.gid()) != (0, pool.gid) {
        std::os::unix::fs::chown(store_dir, Some(0), Some(pool.gid))
            .map_err(|e| format!("changing the owner of '{}': {e}", store_dir.display()))?;
    }
    if meta.mode() & 0o7777 != 0o1775 {
        std::fs::set_permissions(store_dir, std::fs::Permissions::from_mode(0o1775))
            .map_err(|e| format!("changing the mode of '{}': {e}", store_dir.display()))?;
    }
    Ok(Arc::new(pool))
}

/// Where the `oci` backend keeps runc's state (`runc --root`): casnix's, in the state
/// directory.
pub fn oci_state_dir(st: &Store) -> std::path::PathBuf {
    st.state_dir().join("casnix").join("runc")
}

/// The store path a `sandbox-paths` source is in, if it is in the store.
fn store_path_of(st: &Store, source: &str) -> Option<StorePath> {
    let rest = source.strip_prefix(st.store_dir().as_str())?.strip_prefix('/')?;
    StorePath::from_base_name(rest.split('/').next()?).ok()
}

/// `ssl-cert-file` as Nix defaults it: `NIX_SSL_CERT_FILE`, `SSL_CERT_FILE`, else the usual
/// bundle when it exists.
fn ca_file(settings: &Settings) -> Option<std::path::PathBuf> {
    let configured = settings.raw.get("ssl-cert-file").map(str::to_owned);
    let from_env = || std::env::var("NIX_SSL_CERT_FILE").or_else(|_| std::env::var("SSL_CERT_FILE")).ok();
    let default = "/etc/ssl/certs/ca-certificates.crt";
    let path = configured.or_else(from_env).unwrap_or_else(|| default.to_owned());
    (!path.is_empty()).then(|| std::path::PathBuf::from(path)).filter(|p| p.exists())
}

/// The sandbox settings: `sandbox-paths`, plus the closure of every store path among their
/// sources (as Nix adds them), `sandbox-build-dir`, `sandbox-dev-shm-size`.
pub fn config(settings: &Settings, st: &Store, mode: SandboxMode) -> Result<SandboxConfig, String> {
    let mut paths: Vec<SandboxPath> = settings.sandbox_paths.iter().filter_map(|p| SandboxPath::parse(p)).collect();
    let in_store: Vec<StorePath> = paths
        .iter()
        .filter_map(|p| store_path_of(st, &p.source.to_string_lossy()))
        .filter(|p| st.is_valid(p).unwrap_or(false))
        .collect();
    if !in_store.is_empty() {
        let closure = st
            .closure(in_store.iter(), ClosureOptions::default())
            .map_err(|e| format!("while processing 'sandbox-paths': {e}"))?;
        for path in closure {
            paths.push(SandboxPath { target: st.print(&path), source: st.real_path(&path), optional: false });
        }
    }
    Ok(SandboxConfig {
        mode,
        paths,
        build_dir: settings.raw.get("sandbox-build-dir").unwrap_or(SANDBOX_BUILD_DIR).to_owned(),
        shm_size: settings.raw.get("sandbox-dev-shm-size").unwrap_or("50%").to_owned(),
        host_ids: HostIds::current(),
        fallback: settings.raw.get("sandbox-fallback") != Some("false"),
        ca_file: ca_file(settings),
    })
}
