//! Making a store path appear in a running sandbox (recursive Nix's `addDependency`): the
//! helper, started again in its "expose" mode, clones the path's mount tree on the host
//! (`open_tree`), makes the clone read-only, `nosuid` and `nodev`, enters the sandbox's user
//! (when unprivileged) and mount namespaces, and attaches the clone on the mount point the
//! backend created in the sandbox's store directory (`move_mount`). Entering a mount namespace
//! needs a single-threaded process, hence the helper.

#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use rustix::thread::LinkNameSpaceType;

/// The argument (after the helper's own, if embedded) that selects the expose mode, followed
/// by the sandbox's process id, the path on the host and the mount point inside.
pub const EXPOSE_ARG: &str = "--expose";

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// The kernel's `struct mount_attr` (first version).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the detached tree `tree` read-only, `nosuid` and `nodev`, recursively.
fn restrict(tree: BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `mount_setattr` reads `size_of::<MountAttr>()` bytes of `attr`, which lives
    // through the call; the path is a NUL-terminated empty string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Enters the namespace `kind` of process `pid`.
fn enter(pid: u32, kind: &str, ns: LinkNameSpaceType) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/{kind}");
    let file = std::fs::File::open(&path).map_err(|e| format!("opening '{path}': {e}"))?;
    rustix::thread::move_into_link_name_space(file.as_fd(), Some(ns)).map_err(|e| format!("entering '{path}': {e}"))
}

/// Attaches a read-only clone of `source` (on the host) on `target` inside the mount namespace
/// of process `pid`. Must run in a single-threaded process.
pub fn expose(pid: u32, source: &Path, target: &str) -> Result<(), String> {
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| format!("cloning the mount of '{}': {e}", source.display()))?;
    restrict(tree.as_fd()).map_err(|e| format!("making '{}' read-only: {e}", source.display()))?;
    if !rustix::process::geteuid().is_root() {
        enter(pid, "user", LinkNameSpaceType::User)?;
    }
    enter(pid, "mnt", LinkNameSpaceType::Mount)?;
    rustix::mount::move_mount(tree.as_fd(), c"", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| format!("mounting '{}' on '{target}' in the sandbox: {e}", source.display()))
}

/// Exposes paths in one running native sandbox by running the helper in its expose mode.
#[derive(Debug)]
pub struct NativeExposer {
    /// The helper and the arguments that select it.
    pub helper: std::path::PathBuf,
    /// The arguments before [`EXPOSE_ARG`].
    pub helper_args: Vec<String>,
    /// The helper process of the build (its namespaces are the sandbox's).
    pub pid: u32,
    /// The sandbox's root on the host.
    pub root: std::path::PathBuf,
    /// The store directory inside.
    pub store_dir: String,
}

impl crate::request::PathExposer for NativeExposer {
    fn expose(&self, real_path: &Path) -> Result<(), crate::SandboxError> {
        let setup = |m: String| crate::SandboxError::Setup(m);
        let name = real_path.file_name().ok_or_else(|| setup(format!("'{}' has no name", real_path.display())))?;
        let inside = format!("{}/{}", self.store_dir, name.to_string_lossy());
        // The sandbox's store directory is a directory on the host: the mount point made here
        // is the one the builder sees.
        let mount_point = self.root.join(inside.trim_start_matches('/'));
        if std::fs::symlink_metadata(&mount_point).is_ok() {
            return Err(setup(format!("store path '{inside}' already exists in the sandbox")));
        }
        let meta = std::fs::symlink_metadata(real_path).map_err(crate::SandboxError::io(format!("reading '{}'", real_path.display())))?;
        let made = if meta.is_symlink() {
            // A symlink is copied, as Nix does.
            let target = std::fs::read_link(real_path).map_err(crate::SandboxError::io(format!("reading '{}'", real_path.display())))?;
            return std::os::unix::fs::symlink(target, &mount_point).map_err(crate::SandboxError::io(format!("creating '{inside}' in the sandbox")));
        } else if meta.is_dir() {
            std::fs::create_dir(&mount_point)
        } else {
            std::fs::File::create_new(&mount_point).map(drop)
        };
        made.map_err(crate::SandboxError::io(format!("creating '{inside}' in the sandbox")))?;
        let output = std::process::Command::new(&self.helper)
            .args(&self.helper_args)
            .arg(EXPOSE_ARG)
            .arg(self.pid.to_string())
            .arg(real_path)
            .arg(&inside)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(crate::SandboxError::io(format!("running the sandbox helper '{}'", self.helper.display())))?;
        if output.status.success() {
            return Ok(());
        }
        let _ = if meta.is_dir() { std::fs::remove_dir(&mount_point) } else { std::fs::remove_file(&mount_point) };
        Err(setup(String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }
}

/// The expose mode's entry point, given the arguments after [`EXPOSE_ARG`]; returns the exit
/// code (errors go to standard error).
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let result = match args {
        [pid, source, target] => match (pid.to_str().and_then(|p| p.parse().ok()), target.to_str()) {
            (Some(pid), Some(target)) => expose(pid, Path::new(source), target),
            _ => Err("bad arguments".to_owned()),
        },
        _ => Err(format!("usage: {EXPOSE_ARG} PID SOURCE TARGET")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
