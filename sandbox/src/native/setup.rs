//! The sandbox's file system and identity, set up by its first process (PID 1 of the new PID
//! namespace, in the new mount, UTS and network namespaces): bind mounts, `/proc`,
//! `/dev/shm`, `/dev/pts`, host and domain name, loopback, and `pivot_root` into the root.
//! With [`SandboxPlan::skeleton_in_tmpfs`], the root is first a tmpfs made here (the host
//! directories, cloned beforehand, are attached in it), read-only once complete.

use std::path::{Path, PathBuf};

use rustix::fs::StatVfsMountFlags;
use std::os::fd::AsFd;

use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags};

use crate::plan::SandboxPlan;

fn under(root: &Path, inside: &str) -> PathBuf {
    root.join(inside.trim_start_matches('/'))
}

fn failed(what: impl std::fmt::Display, e: rustix::io::Errno) -> String {
    format!("{what}: {}", std::io::Error::from(e))
}

/// Bind-mounts `source` on `target`, read-only if asked. A read-only remount must keep the
/// flags the kernel locks for mounts from a more privileged namespace (`nosuid`, `nodev`,
/// `noexec`, the atime ones), or it fails.
fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    rustix::mount::mount_bind_recursive(source, target)
        .map_err(|e| failed(format!("unable to bind mount '{}' on '{}'", source.display(), target.display()), e))?;
    if !read_only {
        return Ok(());
    }
    let held = rustix::fs::statvfs(target).map_err(|e| failed(format!("statvfs '{}'", target.display()), e))?.f_flag;
    let mut flags = MountFlags::BIND | MountFlags::RDONLY;
    for (has, keep) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if held.contains(has) {
            flags |= keep;
        }
    }
    rustix::mount::mount_remount(target, flags, "")
        .map_err(|e| failed(format!("unable to make '{}' read-only", target.display()), e))
}

/// Sets up the mount namespace and identity for `plan`, ending inside the new root with the
/// build directory as working directory.
pub fn enter_root(plan: &SandboxPlan) -> Result<(), String> {
    let root = &plan.root;
    rustix::mount::mount_change("/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)
        .map_err(|e| failed("unable to make '/' private", e))?;
    let mounts = if plan.skeleton_in_tmpfs {
        skeleton(plan)?
    } else {
        // A mount point of its own, as `pivot_root` needs.
        rustix::mount::mount_bind(root, root).map_err(|e| failed(format!("unable to bind mount '{}'", root.display()), e))?;
        plan.mounts.iter().collect()
    };
    for mount in mounts {
        bind(&mount.source, &under(root, &mount.target), mount.read_only)?;
    }
    let proc = under(root, "/proc");
    rustix::mount::mount("none", &proc, "proc", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None)
        .map_err(|e| failed("mounting /proc", e))?;
    let shm = under(root, "/dev/shm");
    if shm.is_dir() && Path::new("/dev/shm").exists() {
        let options = std::ffi::CString::new(format!("size={}", plan.shm_size)).map_err(|e| format!("bad shm size: {e}"))?;
        rustix::mount::mount("none", &shm, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, Some(options.as_c_str()))
            .map_err(|e| failed("mounting /dev/shm", e))?;
    }
    let pts = under(root, "/dev/pts");
    if pts.is_dir() && Path::new("/dev/pts/ptmx").exists() {
        // As Nix: a private devpts where the kernel allows one; without it, no terminals.
        let _ = rustix::mount::mount(
            "none",
            &pts,
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            Some(c"newinstance,mode=0620,ptmxmode=0666"),
        );
    }
    if plan.skeleton_in_tmpfs {
        rustix::mount::mount_remount(root, MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV, "")
            .map_err(|e| failed("making the sandbox's root read-only", e))?;
    }
    rustix::system::sethostname(plan.hostname.as_bytes()).map_err(|e| failed("cannot set host name", e))?;
    rustix::system::setdomainname(plan.domainname.as_bytes()).map_err(|e| failed("cannot set domain name", e))?;
    if !plan.network {
        super::sys::loopback_up().map_err(|e| format!("cannot set loopback interface flags: {e}"))?;
    }
    std::env::set_current_dir(root).map_err(|e| format!("cannot change directory to '{}': {e}", root.display()))?;
    // The old root goes on top of the new one, and is then detached.
    rustix::process::pivot_root(".", ".").map_err(|e| failed("cannot pivot into the sandbox's root", e))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(|e| failed("cannot unmount the real root", e))?;
    std::env::set_current_dir("/").map_err(|e| format!("cannot change directory to '/': {e}"))?;
    std::env::set_current_dir(&plan.cwd).map_err(|e| format!("changing into '{}': {e}", plan.cwd))?;
    Ok(())
}

/// What a bind mount in the tmpfs is mounted on.
enum MountPoint {
    Directory,
    File,
    /// The source is a symlink: copied, not mounted.
    Symlink(PathBuf),
    /// An optional source that does not exist: nothing.
    Nothing,
}

fn mount_point_for(mount: &crate::plan::BindMount) -> Result<MountPoint, String> {
    match std::fs::symlink_metadata(&mount.source) {
        Ok(meta) if meta.is_symlink() => std::fs::read_link(&mount.source)
            .map(MountPoint::Symlink)
            .map_err(|e| format!("reading '{}': {e}", mount.source.display())),
        Ok(meta) if meta.is_dir() => Ok(MountPoint::Directory),
        Ok(_) => Ok(MountPoint::File),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mount.optional => Ok(MountPoint::Nothing),
        Err(e) => Err(format!("getting attributes of path '{}': {e}", mount.source.display())),
    }
}

/// Mounts a tmpfs on the root and makes the skeleton in it: directories, files, symlinks and
/// the mount points outside the host directories, which are attached back (cloned before the
/// tmpfs hides them). Returns the bind mounts still to be made (a missing optional source or
/// a symlink, copied as a symlink, is not mounted).
fn skeleton(plan: &SandboxPlan) -> Result<Vec<&crate::plan::BindMount>, String> {
    let root = &plan.root;
    let mut kept = Vec::new();
    for dir in plan.host_directories() {
        let host = under(root, dir);
        let tree = rustix::mount::open_tree(rustix::fs::CWD, &host, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
            .map_err(|e| failed(format!("cloning '{}'", host.display()), e))?;
        kept.push((dir, tree));
    }
    let mut points = Vec::new();
    for mount in plan.mounts.iter().filter(|m| !plan.is_on_host(&m.target)) {
        points.push((mount, mount_point_for(mount)?));
    }
    // The skeleton belongs to the builder's ids (which the user namespace maps; the process's
    // own may not be), and becomes read-only once complete.
    let options = std::ffi::CString::new(format!("mode={:o},uid={},gid={}", plan.root_mode, plan.uid, plan.gid))
        .map_err(|e| e.to_string())?;
    rustix::mount::mount("none", root, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, Some(options.as_c_str()))
        .map_err(|e| failed("mounting the sandbox's root", e))?;
    // Filled through relative paths: the builder's ids may not get through the host's
    // directories above.
    std::env::set_current_dir(root).map_err(|e| format!("cannot change directory to '{}': {e}", root.display()))?;
    // As the builder's ids: the process's own when they are those, else on a thread of its
    // own (credentials are per thread, and the process's may not be mapped in the user
    // namespace, so could not be set back).
    let own = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    if own == (plan.uid, plan.gid) {
        make_skeleton(plan, &points)?;
    } else {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    super::sys::set_fs_ids(plan.uid, plan.gid);
                    make_skeleton(plan, &points)
                })
                .join()
                .unwrap_or_else(|_| Err("making the sandbox's skeleton failed".to_owned()))
        })?;
    }
    for (dir, tree) in kept {
        rustix::mount::move_mount(tree.as_fd(), c"", rustix::fs::CWD, under(root, dir), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| failed(format!("attaching '{dir}' in the sandbox"), e))?;
    }
    let skipped: Vec<&str> =
        points.iter().filter(|(_, p)| matches!(p, MountPoint::Nothing | MountPoint::Symlink(_))).map(|(m, _)| m.target.as_str()).collect();
    Ok(plan.mounts.iter().filter(|m| !skipped.contains(&m.target.as_str())).collect())
}

fn make_skeleton(plan: &SandboxPlan, points: &[(&crate::plan::BindMount, MountPoint)]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fn made(what: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
        move |e| format!("creating '{}' in the sandbox: {e}", Path::new("/").join(what).display())
    }
    let here = |inside: &str| PathBuf::from(inside.trim_start_matches('/'));
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("changing the mode of '/{}': {e}", path.display()))
    };
    for dir in &plan.directories {
        let path = here(&dir.target);
        std::fs::create_dir_all(&path).map_err(made(&path))?;
    }
    for file in &plan.files {
        let path = here(&file.target);
        std::fs::write(&path, &file.contents).map_err(made(&path))?;
        set_mode(&path, file.mode)?;
    }
    for link in &plan.symlinks {
        let path = here(&link.target);
        std::os::unix::fs::symlink(&link.points_to, &path).map_err(made(&path))?;
    }
    for (mount, point) in points {
        let path = here(&mount.target);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(made(parent))?;
        }
        match point {
            MountPoint::Directory => std::fs::create_dir_all(&path).map_err(made(&path))?,
            MountPoint::File if std::fs::symlink_metadata(&path).is_err() => {
                std::fs::File::create(&path).map(drop).map_err(made(&path))?
            }
            MountPoint::File | MountPoint::Nothing => {}
            MountPoint::Symlink(to) => std::os::unix::fs::symlink(to, &path).map_err(made(&path))?,
        }
    }
    for dir in plan.directories.iter().filter(|d| !plan.is_on_host(&d.target)) {
        set_mode(&here(&dir.target), dir.mode)?;
    }
    Ok(())
}
