//! Making a [`SandboxPlan`] real on the host, whatever backend runs it: the chroot directory
//! in the store directory (locked while it exists, so the collector leaves it alone), the root
//! with its directories, generated files, symlinks and mount points, the build directory with
//! the builder's files; and afterwards moving the outputs to where the request wants them and
//! removing the rest.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::env::BuildEnv;
use crate::none::{create_build_dir, remove_build_dir, write_builder_env};
use crate::plan::{HostIds, SandboxPlan};
use crate::request::{BuildRequest, SandboxError};

/// A sandbox set up on the host; removed when dropped.
#[derive(Debug)]
pub struct PreparedSandbox {
    /// The plan, with the build directory filled in and the mounts whose sources are missing
    /// (optional ones) or are symlinks (created as symlinks instead) taken out.
    pub plan: SandboxPlan,
    /// The builder's environment, arguments and files (already written).
    pub env: BuildEnv,
    /// `nix-build-…`: the root-owned parent of the build directory.
    top_build_dir: PathBuf,
    /// Keeps the chroot directory locked while it exists.
    _lock: File,
    keep_build_dir: bool,
    /// See [`PreparedSandbox::remove_in_background`].
    remove_in_background: bool,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    SandboxError::io(context)
}

/// `path` inside `root`.
fn under(root: &Path, inside: &str) -> PathBuf {
    root.join(inside.trim_start_matches('/'))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("changing the mode of '{}'", path.display())))
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), SandboxError> {
    let uid = uid.map(rustix::process::Uid::from_raw);
    let gid = gid.map(rustix::process::Gid::from_raw);
    rustix::fs::chown(path, uid, gid)
        .map_err(|e| io(format!("changing the owner of '{}'", path.display()))(e.into()))
}

/// Whether the builder is someone else on the host (a build user) than the daemon.
fn build_user(ids: HostIds) -> Option<HostIds> {
    (ids != HostIds::current()).then_some(ids)
}

fn host_ids_of(plan: &SandboxPlan) -> HostIds {
    HostIds {
        uid: plan.uid_map.first().map_or(0, |m| m.outside),
        gid: plan.gid_map.first().map_or(0, |m| m.outside),
    }
}

/// Creates the chroot directory afresh and locks it.
fn create_chroot_dir(dir: &Path) -> Result<File, SandboxError> {
    if std::fs::symlink_metadata(dir).is_ok() {
        // A leftover of an interrupted build, unless a running one holds it.
        if let Ok(old) = File::open(dir) {
            if rustix::fs::flock(&old, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
                return Err(SandboxError::Setup(format!("'{}' is in use by another build", dir.display())));
            }
        }
        remove_build_dir(dir);
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io(format!("cannot create '{}'", dir.display())))?;
    let file = File::open(dir).map_err(io(format!("opening '{}'", dir.display())))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| io(format!("locking '{}'", dir.display()))(e.into()))?;
    Ok(file)
}

/// Creates what a bind mount is mounted on; `Ok(false)` when the mount is dropped (an optional
/// source that is missing, or a symlink, which is copied as a symlink instead).
pub(crate) fn mount_point(source: &Path, target: &Path, optional: bool) -> Result<bool, SandboxError> {
    let meta = match std::fs::symlink_metadata(source) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(false),
        Err(e) => return Err(io(format!("getting attributes of path '{}'", source.display()))(e)),
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("creating '{}'", parent.display())))?;
    }
    if meta.file_type().is_symlink() {
        let to = std::fs::read_link(source).map_err(io(format!("reading '{}'", source.display())))?;
        std::os::unix::fs::symlink(&to, target).map_err(io(format!("creating '{}'", target.display())))?;
        return Ok(false);
    }
    if meta.is_dir() {
        std::fs::create_dir_all(target).map_err(io(format!("creating '{}'", target.display())))?;
    } else if std::fs::symlink_metadata(target).is_err() {
        File::create(target).map_err(io(format!("creating '{}'", target.display())))?;
    }
    Ok(true)
}

/// Sets up `plan` for `request` on the host.
pub fn prepare(request: &BuildRequest, mut plan: SandboxPlan) -> Result<PreparedSandbox, SandboxError> {
    let ids = host_ids_of(&plan);
    let other_user = build_user(ids);
    let lock = create_chroot_dir(&plan.chroot_dir)?;
    let root = plan.root.clone();
    std::fs::DirBuilder::new().mode(0o700).create(&root).map_err(io(format!("cannot create '{}'", root.display())))?;
    if other_user.is_some() {
        chown(&root, Some(0), Some(ids.gid))?;
    }
    // With the skeleton in a tmpfs, only what is in the host directories is made here.
    for dir in plan.directories.iter().filter(|d| plan.is_on_host(&d.target)) {
        let path = under(&root, &dir.target);
        std::fs::create_dir_all(&path).map_err(io(format!("creating '{}'", path.display())))?;
    }
    if other_user.is_some() {
        chown(&under(&root, &plan.store_dir), Some(0), Some(ids.gid))?;
    }

    // The build directory, private to the builder: `<top>/build`, both 0700.
    let top_build_dir = create_build_dir(&request.build_dir_parent, &request.drv_base_name)?;
    let build_dir_host = top_build_dir.join("build");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&build_dir_host)
        .map_err(io(format!("creating '{}'", build_dir_host.display())))?;
    plan.set_build_dir_host(build_dir_host.clone());
    let outputs = plan.outputs.iter().map(|o| (o.name.clone(), o.inside.clone())).collect();
    let mut env = write_builder_env(request, &plan.store_dir, &plan.build_dir, &outputs, &build_dir_host)?;
    if let Some(user) = other_user {
        chown(&build_dir_host, Some(user.uid), Some(user.gid))?;
        for (name, _) in env.files.iter().chain(&request.extra_files) {
            chown(&build_dir_host.join(name), Some(user.uid), Some(user.gid))?;
        }
    }
    let info = crate::request::BuildDirInfo {
        host: &build_dir_host,
        inside: &plan.build_dir,
        owner: other_user.map(|u| (u.uid, u.gid)),
    };
    request.run_build_dir_hook(&info, &mut env.vars)?;

    for file in plan.files.iter().filter(|f| plan.is_on_host(&f.target)) {
        let path = under(&root, &file.target);
        std::fs::write(&path, &file.contents).map_err(io(format!("writing '{}'", path.display())))?;
        set_mode(&path, file.mode)?;
    }
    for link in plan.symlinks.iter().filter(|l| plan.is_on_host(&l.target)) {
        let path = under(&root, &link.target);
        std::os::unix::fs::symlink(&link.points_to, &path).map_err(io(format!("creating '{}'", path.display())))?;
    }
    let mut mounts = Vec::with_capacity(plan.mounts.len());
    for mount in std::mem::take(&mut plan.mounts) {
        if !plan.is_on_host(&mount.target) || mount_point(&mount.source, &under(&root, &mount.target), mount.optional)? {
            mounts.push(mount);
        }
    }
    plan.mounts = mounts;
    // Modes last: `/etc` becomes read-only once what is in it exists.
    for dir in plan.directories.iter().filter(|d| plan.is_on_host(&d.target)) {
        set_mode(&under(&root, &dir.target), dir.mode)?;
    }
    set_mode(&root, plan.root_mode)?;
    Ok(PreparedSandbox { plan, env, top_build_dir, _lock: lock, keep_build_dir: false, remove_in_background: false })
}

/// Copies the tree at `from` to `to` (which must not exist) as new files: regular files,
/// directories and symlinks, with their executable bits.
pub fn copy_fresh(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if kind.is_dir() {
        // The builder may have left its directories unreadable; they are ours to read.
        if meta.permissions().mode() & 0o500 != 0o500 {
            std::fs::set_permissions(from, std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700))?;
        }
        std::fs::DirBuilder::new().mode(0o755).create(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_fresh(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if kind.is_file() {
        if meta.permissions().mode() & 0o400 == 0 {
            std::fs::set_permissions(from, std::fs::Permissions::from_mode(meta.permissions().mode() | 0o600))?;
        }
        let mut source = File::open(from)?;
        let mut target = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
        std::io::copy(&mut source, &mut target)?;
        let exec = if meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 };
        target.set_permissions(std::fs::Permissions::from_mode(exec))
    } else {
        Err(std::io::Error::other(format!("'{}' is not a regular file, directory or symlink", from.display())))
    }
}

impl PreparedSandbox {
    /// Moves each output the builder produced from the sandbox's store to its destination
    /// (renamed, or copied to fresh inodes when the plan says so). Outputs that were not
    /// produced are left for the caller to report.
    pub fn move_outputs(&self) -> Result<(), SandboxError> {
        for output in &self.plan.outputs {
            if std::fs::symlink_metadata(&output.staged).is_err() {
                continue;
            }
            if std::fs::symlink_metadata(&output.destination).is_ok() {
                remove_build_dir(&output.destination);
            }
            let context = || format!("moving output '{}' to '{}'", output.name, output.destination.display());
            if output.fresh_copy {
                if let Err(e) = copy_fresh(&output.staged, &output.destination) {
                    remove_build_dir(&output.destination);
                    return Err(io(context())(e));
                }
                remove_build_dir(&output.staged);
            } else if let Err(e) = std::fs::rename(&output.staged, &output.destination) {
                if e.raw_os_error() != Some(rustix::io::Errno::XDEV.raw_os_error()) {
                    return Err(io(context())(e));
                }
                copy_fresh(&output.staged, &output.destination).map_err(io(context()))?;
            }
        }
        Ok(())
    }

    /// Removes the root and the build directory on a thread of their own when this is
    /// dropped (the root renamed first, so its name is free at once): removing what were mount
    /// points of an ended sandbox waits for the kernel to tear its namespaces down, which the
    /// build's result need not wait for.
    pub fn remove_in_background(&mut self) {
        self.remove_in_background = true;
    }

    /// Keeps the build directory when this is dropped (`keep-failed` after a failure);
    /// returns its path.
    pub fn keep_build_dir(&mut self) -> &Path {
        self.keep_build_dir = true;
        &self.plan.build_dir_host
    }
}

impl Drop for PreparedSandbox {
    fn drop(&mut self) {
        if !self.remove_in_background {
            remove_build_dir(&self.plan.chroot_dir);
        }
        let mut doomed = Vec::new();
        if self.remove_in_background {
            // Renamed first (so the name is free for the next build of the derivation at
            // once), then removed on a thread of its own.
            let trash = trash_name(&self.plan.chroot_dir);
            match std::fs::rename(&self.plan.chroot_dir, &trash) {
                Ok(()) => doomed.push(trash),
                Err(_) => remove_build_dir(&self.plan.chroot_dir),
            }
        }
        if self.keep_build_dir {
            // Nix opens it up so the user can look inside.
            let _ = std::fs::set_permissions(&self.top_build_dir, std::fs::Permissions::from_mode(0o755));
            let _ = std::fs::set_permissions(&self.plan.build_dir_host, std::fs::Permissions::from_mode(0o755));
        } else if self.remove_in_background {
            // Its name is unique to this build.
            doomed.push(self.top_build_dir.clone());
        } else {
            remove_build_dir(&self.top_build_dir);
        }
        if doomed.is_empty() {
            return;
        }
        let remove_all = move || doomed.iter().for_each(|dir| remove_build_dir(dir));
        if let Err(e) = std::thread::Builder::new().name("casnix-sandbox-cleanup".into()).spawn(remove_all.clone()) {
            tracing::debug!("removing sandbox directories here: {e}");
            remove_all();
        }
    }
}

/// A unique name beside `chroot_dir` for it to be removed under.
fn trash_name(chroot_dir: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = chroot_dir.as_os_str().to_owned();
    name.push(format!(".old-{}-{n}", std::process::id()));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, SandboxConfig, SandboxPath};
    use nix_formats::derivation::Derivation;
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;

    fn request(tmp: &Path, fixed_output: bool) -> BuildRequest {
        let store = tmp.join("store");
        std::fs::create_dir_all(store.join("cccccccccccccccccccccccccccccccc-in")).unwrap();
        std::os::unix::fs::symlink("/somewhere", store.join("dddddddddddddddddddddddddddddddd-link")).unwrap();
        std::fs::create_dir_all(tmp.join("builds")).unwrap();
        BuildRequest {
            drv_base_name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-t.drv".into(),
            derivation: Derivation {
                name: "t".into(),
                outputs: Default::default(),
                input_drvs: Default::default(),
                input_srcs: Default::default(),
                system: b"x86_64-linux".to_vec(),
                builder: b"/bin/sh".to_vec(),
                args: vec![],
                env: [(b"passAsFile".to_vec(), b"x".to_vec()), (b"x".to_vec(), b"hello".to_vec())].into(),
            },
            store_dir: "/nix/store".into(),
            outputs: [("out".to_owned(), store.join("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-t"))].into(),
            inputs: BTreeSet::from([
                store.join("cccccccccccccccccccccccccccccccc-in"),
                store.join("dddddddddddddddddddddddddddddddd-link"),
            ]),
            build_dir_parent: tmp.join("builds"),
            cores: 1,
            fixed_output,
            impure_env: Default::default(),
            timeout: None,
            max_silent_time: None,
            keep_failed: false,
            extra_files: vec![],
            rewrites: Default::default(),
            structured_extra: Default::default(),
            on_build_dir: None,
            cancel: Default::default(),
            live: Default::default(),
        }
    }

    #[test]
    fn prepares_the_root_and_moves_outputs_out() {
        let tmp = tempfile::tempdir().unwrap();
        for fixed_output in [false, true] {
            let req = request(tmp.path(), fixed_output);
            let config = SandboxConfig { paths: SandboxPath::parse_list("/missing?"), ..Default::default() };
            let p = plan(&req, &config).unwrap().unwrap();
            let sandbox = prepare(&req, p).unwrap();
            let root = sandbox.plan.root.clone();
            assert_eq!(std::fs::read_to_string(root.join("etc/group")).unwrap(), "root:x:0:\nnixbld:!:100:\nnogroup:x:65534:\n");
            assert_eq!(std::fs::metadata(root.join("nix/store")).unwrap().mode() & 0o7777, 0o1775);
            assert_eq!(std::fs::metadata(root.join("etc")).unwrap().mode() & 0o7777, 0o555);
            assert!(root.join("nix/store/cccccccccccccccccccccccccccccccc-in").is_dir());
            assert_eq!(
                std::fs::read_link(root.join("nix/store/dddddddddddddddddddddddddddddddd-link")).unwrap(),
                PathBuf::from("/somewhere")
            );
            assert!(!sandbox.plan.mounts.iter().any(|m| m.target == "/missing" || m.target.ends_with("-link")));
            let build = sandbox.plan.build_dir_host.clone();
            assert_eq!(std::fs::metadata(&build).unwrap().mode() & 0o777, 0o700);
            assert_eq!(std::fs::metadata(build.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
            assert!(std::fs::read_dir(&build).unwrap().count() > 0, "passAsFile writes a file");
            let staged = &sandbox.plan.outputs[0].staged;
            std::fs::create_dir(staged).unwrap();
            std::fs::write(staged.join("f"), "x").unwrap();
            let staged_inode = std::fs::metadata(staged.join("f")).unwrap().ino();
            sandbox.move_outputs().unwrap();
            let dest = &sandbox.plan.outputs[0].destination.clone();
            assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "x");
            // Fixed outputs are fresh copies, others the builder's own files.
            assert_eq!(std::fs::metadata(dest.join("f")).unwrap().ino() == staged_inode, !fixed_output);
            let chroot = sandbox.plan.chroot_dir.clone();
            drop(sandbox);
            assert!(!chroot.exists());
            assert!(!build.exists());
            std::fs::remove_dir_all(dest).unwrap();
            std::fs::remove_dir_all(tmp.path().join("store/cccccccccccccccccccccccccccccccc-in")).unwrap();
            std::fs::remove_file(tmp.path().join("store/dddddddddddddddddddddddddddddddd-link")).unwrap();
        }
    }

    #[test]
    fn a_sandbox_in_use_is_not_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let req = request(tmp.path(), false);
        let first = prepare(&req, plan(&req, &SandboxConfig::default()).unwrap().unwrap()).unwrap();
        let second = prepare(&req, plan(&req, &SandboxConfig::default()).unwrap().unwrap());
        assert!(matches!(second, Err(SandboxError::Setup(ref m)) if m.contains("in use")), "{second:?}");
        assert!(first.plan.root.join("etc/passwd").exists());
        drop(first);
        prepare(&req, plan(&req, &SandboxConfig::default()).unwrap().unwrap()).unwrap();
    }
}
