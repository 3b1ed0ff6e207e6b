//! Recursive Nix (experimental feature `recursive-nix`), as Nix 2.26's `LocalDerivationGoal`
//! (`startDaemon`, `RestrictedStore`, `addDependency`): a derivation with
//! `requiredSystemFeatures = [ "recursive-nix" ]` gets a daemon socket `.nix-socket` in its
//! build directory and `NIX_REMOTE=unix://<build dir>/.nix-socket`. Connections to it are
//! served by the daemon's own session code ([`crate::session::serve_restricted`]), untrusted,
//! over a restricted view of the store ([`Restriction`], enforced by
//! [`crate::ops::restricted`]): only the build's input closure and the paths added or built
//! through the socket exist. Those additions become references the outputs may have.
//!
//! As Nix, paths added during a sandboxed build are mounted into the running sandbox
//! ([`sandbox::LiveSandbox`]; the `native` backend does it, the `oci` one does not yet).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix_formats::derivation::Derivation;
use nix_formats::realisation::DrvOutput;
use nix_formats::store_path::StorePath;
use sandbox::request::{BuildDirHook, BuildDirInfo};
use sandbox::SandboxError;
use store::Store;

use super::BuildFailure;
use crate::locations::Locations;
use crate::settings::Settings;

/// The socket's name in the build directory.
pub const SOCKET_NAME: &str = ".nix-socket";

/// The system feature that asks for recursive Nix.
pub const FEATURE: &str = "recursive-nix";

/// What a recursive daemon needs from the session that builds: the same store (so the
/// session's temporary roots keep what the build adds), its settings and locations.
#[derive(Debug, Clone)]
pub struct RecursiveContext {
    /// The session's store.
    pub store: Arc<Store>,
    /// The daemon's settings.
    pub settings: Arc<Settings>,
    /// Where things are.
    pub locations: Arc<Locations>,
}

/// The paths a recursive Nix session may see: the build's input closure and what was added
/// (or built) through it, and the derivation outputs it built.
#[derive(Debug, Default)]
pub struct Restriction {
    state: Mutex<Allowed>,
    /// The running build's sandbox, and the store that says where paths are on disk.
    sandbox: Option<(sandbox::LiveSandbox, Arc<Store>)>,
}

#[derive(Debug, Default)]
struct Allowed {
    inputs: BTreeSet<StorePath>,
    added: BTreeSet<StorePath>,
    drv_outputs: BTreeSet<DrvOutput>,
}

impl Restriction {
    /// A view of `inputs` alone.
    pub fn new(inputs: BTreeSet<StorePath>) -> Self {
        Self { state: Mutex::new(Allowed { inputs, ..Default::default() }), sandbox: None }
    }

    /// A view of `inputs` whose additions are also mounted into the running `sandbox`.
    pub fn for_sandbox(inputs: BTreeSet<StorePath>, sandbox: sandbox::LiveSandbox, store: Arc<Store>) -> Self {
        Self { sandbox: Some((sandbox, store)), ..Self::new(inputs) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Allowed> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `path` is visible (Nix's `isAllowed`).
    pub fn is_allowed(&self, path: &StorePath) -> bool {
        let state = self.lock();
        state.inputs.contains(path) || state.added.contains(path)
    }

    /// Whether the realisation `id` is visible (built through this view).
    pub fn is_allowed_output(&self, id: &DrvOutput) -> bool {
        self.lock().drv_outputs.contains(id)
    }

    /// Makes `paths` visible (Nix's `addDependency`): to the session, and in the running
    /// sandbox at their store paths.
    pub fn add<'a>(&self, paths: impl IntoIterator<Item = &'a StorePath>) -> Result<(), SandboxError> {
        let mut state = self.lock();
        for path in paths {
            if state.inputs.contains(path) || state.added.contains(path) {
                continue;
            }
            if let Some((sandbox, store)) = &self.sandbox {
                sandbox.expose(&store.real_path(path))?;
            }
            state.added.insert(path.clone());
        }
        Ok(())
    }

    /// Makes the realisations `ids` visible.
    pub fn add_outputs(&self, ids: impl IntoIterator<Item = DrvOutput>) {
        self.lock().drv_outputs.extend(ids);
    }

    /// Every visible path.
    pub fn all(&self) -> BTreeSet<StorePath> {
        let state = self.lock();
        state.inputs.union(&state.added).cloned().collect()
    }

    /// The paths added to the input closure.
    pub fn added(&self) -> BTreeSet<StorePath> {
        self.lock().added.clone()
    }
}

/// Whether `drv` asks for recursive Nix.
pub fn wanted(drv: &Derivation) -> bool {
    sandbox::env::drv_strings_attr(drv, "requiredSystemFeatures").iter().any(|f| f == FEATURE)
}

/// The inputs the outputs may refer to: `inputs` and what the build added.
pub fn with_added<'a>(inputs: &'a BTreeSet<StorePath>, added: BTreeSet<StorePath>) -> Cow<'a, BTreeSet<StorePath>> {
    if added.is_empty() {
        return Cow::Borrowed(inputs);
    }
    let mut all = inputs.clone();
    all.extend(added);
    Cow::Owned(all)
}

/// A recursive daemon for one build: started by the backend's build-directory hook, stopped
/// (with its connections) when the builder has ended.
pub struct RecursiveDaemon {
    context: RecursiveContext,
    restriction: Arc<Restriction>,
    running: Arc<Mutex<Option<Running>>>,
}

/// The accepting thread and the pipe that wakes it to stop.
struct Running {
    accepter: JoinHandle<()>,
    wake: std::io::PipeWriter,
}

impl RecursiveDaemon {
    /// A daemon for building `drv` (printed `printed`) with `inputs`, if it wants one. Fails as
    /// Nix does when the experimental feature is off (the machine then lacks the system feature).
    pub fn for_build(
        context: Option<&RecursiveContext>,
        system: &str,
        printed: &str,
        drv: &Derivation,
        inputs: &BTreeSet<StorePath>,
        sandbox: &sandbox::LiveSandbox,
    ) -> Result<Option<Self>, BuildFailure> {
        if !wanted(drv) {
            return Ok(None);
        }
        let context = context.filter(|c| c.settings.experimental_features.iter().any(|f| f == FEATURE));
        let Some(context) = context else {
            let features: Vec<String> = sandbox::env::drv_strings_attr(drv, "requiredSystemFeatures");
            return Err(BuildFailure {
                status: nix_formats::build_result::BuildStatus::InputRejected,
                message: format!(
                    "a '{}' with features {{{}}} is required to build '{printed}', but I am a '{system}' with features {{}}",
                    String::from_utf8_lossy(&drv.system),
                    features.join(", ")
                ),
            });
        };
        Ok(Some(Self {
            context: context.clone(),
            restriction: Arc::new(Restriction::for_sandbox(inputs.clone(), sandbox.clone(), Arc::clone(&context.store))),
            running: Arc::new(Mutex::new(None)),
        }))
    }

    /// The hook that binds the socket in the build directory, starts accepting and gives the
    /// builder `NIX_REMOTE`.
    pub fn hook(&self) -> BuildDirHook {
        let context = self.context.clone();
        let restriction = Arc::clone(&self.restriction);
        let running = Arc::clone(&self.running);
        BuildDirHook(Arc::new(move |info: &BuildDirInfo<'_>| {
            let listener = bind_socket(info)?;
            let (wake_rx, wake) = std::io::pipe().map_err(SandboxError::io("creating a pipe"))?;
            let (context, restriction) = (context.clone(), Arc::clone(&restriction));
            let accepter = std::thread::Builder::new()
                .name("recursive-nix".into())
                .spawn(move || accept_loop(listener, wake_rx, context, restriction))
                .map_err(SandboxError::io("starting the recursive Nix daemon"))?;
            *running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running { accepter, wake });
            let remote = format!("unix://{}/{SOCKET_NAME}", info.inside);
            Ok([("NIX_REMOTE".to_owned(), remote)].into())
        }))
    }

    /// Stops accepting, ends the connections, and returns the paths the build added.
    pub fn stop(self) -> BTreeSet<StorePath> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Running { accepter, mut wake }) = running {
            let _ = wake.write_all(b"x");
            if accepter.join().is_err() {
                tracing::error!("the recursive Nix daemon's thread panicked");
            }
        }
        self.restriction.added()
    }
}

/// Binds `.nix-socket` in the build directory, mode 0600 and owned by the builder's user.
/// Long paths are reached through the directory's descriptor (`sun_path` holds 108 bytes).
fn bind_socket(info: &BuildDirInfo<'_>) -> Result<UnixListener, SandboxError> {
    let path = info.host.join(SOCKET_NAME);
    let context = format!("creating the socket '{}'", path.display());
    let listener = if path.as_os_str().len() < 100 {
        UnixListener::bind(&path)
    } else {
        let dir = std::fs::File::open(info.host).map_err(SandboxError::io(context.clone()))?;
        use std::os::fd::AsRawFd;
        let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", dir.as_raw_fd());
        UnixListener::bind(Path::new(&short))
    }
    .map_err(SandboxError::io(context.clone()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(SandboxError::io(context.clone()))?;
    if let Some((uid, gid)) = info.owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(SandboxError::io(context))?;
    }
    Ok(listener)
}

/// Accepts connections until woken through `wake`; each is served on a thread of its own.
/// Then the connections still open are shut down and their threads joined.
fn accept_loop(listener: UnixListener, wake: std::io::PipeReader, context: RecursiveContext, restriction: Arc<Restriction>) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut workers: Vec<(JoinHandle<()>, Option<UnixStream>)> = Vec::new();
    loop {
        let mut fds = [PollFd::new(&listener, PollFlags::IN), PollFd::new(&wake, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("recursive Nix daemon: waiting for connections: {e}");
                break;
            }
        }
        if !fds[1].revents().is_empty() {
            break;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("recursive Nix daemon: accepting a connection: {e}");
                break;
            }
        };
        tracing::debug!("received a recursive Nix connection");
        let handle = stream.try_clone().ok();
        let (context, restriction) = (context.clone(), Arc::clone(&restriction));
        match std::thread::Builder::new().name("recursive-nix-conn".into()).spawn(move || serve(stream, context, restriction)) {
            Ok(worker) => workers.push((worker, handle)),
            Err(e) => tracing::error!("recursive Nix daemon: starting a connection's thread: {e}"),
        }
        workers.retain(|(worker, _)| !worker.is_finished());
    }
    for (worker, handle) in workers {
        if let Some(stream) = handle {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = worker.join();
    }
}

/// Serves one recursive Nix connection on this thread.
fn serve(stream: UnixStream, context: RecursiveContext, restriction: Arc<Restriction>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::error!("recursive Nix daemon: starting a runtime: {e}"),
    };
    runtime.block_on(async move {
        let stream = match stream.set_nonblocking(true).and_then(|()| tokio::net::UnixStream::from_std(stream)) {
            Ok(stream) => stream,
            Err(e) => return tracing::error!("recursive Nix daemon: {e}"),
        };
        match crate::session::serve_restricted(stream, &context, restriction).await {
            Ok(()) => tracing::debug!("recursive Nix connection ended"),
            Err(e) => tracing::debug!("recursive Nix connection ended: {e:#}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> StorePath {
        StorePath::from_base_name(&format!("{}-{name}", "a".repeat(32))).unwrap()
    }

    #[test]
    fn restriction_sees_inputs_and_additions_only() {
        let r = Restriction::new(BTreeSet::from([path("in")]));
        assert!(r.is_allowed(&path("in")));
        assert!(!r.is_allowed(&path("other")));
        r.add([&path("other"), &path("in")]).unwrap();
        assert!(r.is_allowed(&path("other")));
        assert_eq!(r.added(), BTreeSet::from([path("other")]));
        assert_eq!(r.all().len(), 2);
    }

    #[test]
    fn only_added_paths_extend_the_inputs() {
        let inputs = BTreeSet::from([path("in")]);
        assert!(matches!(with_added(&inputs, BTreeSet::new()), Cow::Borrowed(_)));
        assert_eq!(with_added(&inputs, BTreeSet::from([path("x")])).len(), 2);
    }
}
