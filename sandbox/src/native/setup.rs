//! The sandbox's file system and identity, set up by its first process (PID 1 of the new PID
//! namespace, in the new mount, UTS and network namespaces): bind mounts, `/proc`,
//! `/dev/shm`, `/dev/pts`, host and domain name, loopback, and `pivot_root` into the root.

use std::path::{Path, PathBuf};

use rustix::fs::StatVfsMountFlags;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

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
    // A mount point of its own, as `pivot_root` needs.
    rustix::mount::mount_bind(root, root).map_err(|e| failed(format!("unable to bind mount '{}'", root.display()), e))?;
    for mount in &plan.mounts {
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
