//! The zygote: the helper started once by the backend (exec'd, so single-threaded with a clean
//! address space), which forks one process per build instead of the backend exec'ing a helper
//! each time. Nix's seccomp filter is compiled here once, before any fork.
//!
//! Its stdin is its end of a unix socket pair with the backend. Each message is one byte
//! carrying two descriptors (see [`super::protocol`]); the zygote forks, the child becomes the
//! build's process ([`super::helper::build`]) and the zygote closes its copies. It never
//! waits for its children (`SIGCHLD` is ignored, so the kernel reaps them) and ends when the
//! backend closes the socket. A build's process dies with the zygote (`PR_SET_PDEATHSIG`).

#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use super::confine::CompiledFilter;
use super::sys;

/// Reads one message from `socket`: `Ok(None)` at the end, else its descriptors (none when the
/// message carried none).
fn receive(socket: &OwnedFd) -> std::io::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(socket, &mut [IoSliceMut::new(&mut byte)], &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    if received.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some(fds))
}

/// Sets `SIGCHLD`'s disposition (ignored: the kernel reaps the children; default: they can be
/// waited for).
fn reap_children_automatically(yes: bool) {
    let action = if yes { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: setting a signal's disposition to ignore or default installs no handler.
    unsafe { libc::signal(libc::SIGCHLD, action) };
}

/// The zygote's loop; returns its exit code once the backend is gone.
pub fn main() -> i32 {
    let zygote = rustix::process::getpid();
    // The socket moves off stdin (a descriptor that builds must not inherit), and stdin
    // becomes /dev/null.
    let socket = match rustix::io::fcntl_dupfd_cloexec(std::io::stdin().as_fd(), 3) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("casnix sandbox zygote: taking the socket: {e}");
            return 1;
        }
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: both are open descriptors; descriptor 0 is replaced, not owned by anything.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDIN_FILENO) };
    }
    // Nix's usual rules (a plan with others compiles its own in the build's process).
    let filter = match CompiledFilter::compile(&crate::plan::seccomp_plan()) {
        Ok(filter) => Some(filter),
        Err(e) => {
            eprintln!("casnix sandbox zygote: {e}");
            None
        }
    };
    reap_children_automatically(true);
    loop {
        let fds = match receive(&socket) {
            Ok(Some(fds)) => fds,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("casnix sandbox zygote: reading from the backend: {e}");
                return 1;
            }
        };
        let Ok::<[OwnedFd; 2], _>([control, log]) = fds.try_into() else {
            // Not a build: the backend sends two descriptors.
            continue;
        };
        match sys::fork() {
            Ok(sys::Forked::Child) => {
                drop(socket);
                reap_children_automatically(false);
                // Its own process group (the backend kills the group), dying with the zygote.
                let _ = rustix::process::setpgid(None, None);
                let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
                if rustix::process::getppid() != Some(zygote) {
                    sys::exit_now(1);
                }
                super::helper::build(control, log, filter.as_ref())
            }
            Ok(sys::Forked::Parent(_)) => {}
            Err(e) => eprintln!("casnix sandbox zygote: forking a build: {e}"),
        }
        // The child has its copies (a failed fork closes the control channel: the backend
        // sees the build end before it started).
        drop((control, log));
    }
}
