//! The two system calls the helper makes that have no safe wrapper: `unshare` (unsafe in
//! rustix only because of `CLONE_FILES`, which is never passed here) and bringing the loopback
//! interface up (an `ioctl` on a socket).

#![allow(unsafe_code)]

use rustix::thread::UnshareFlags;

/// Which namespaces the helper creates.
#[derive(Debug, Clone, Copy)]
pub struct Namespaces {
    /// A network namespace of its own (builds that are not fixed-output).
    pub network: bool,
}

/// Moves the calling (single-threaded) process into new user, mount, PID (for its children),
/// IPC and UTS namespaces, and a new network namespace if asked.
pub fn unshare(namespaces: Namespaces) -> std::io::Result<()> {
    let mut flags = UnshareFlags::NEWUSER
        | UnshareFlags::NEWNS
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWIPC
        | UnshareFlags::NEWUTS;
    if namespaces.network {
        flags |= UnshareFlags::NEWNET;
    }
    // SAFETY: `CLONE_FILES` is not among the flags, so no file descriptor table is unshared,
    // which is the only thing that makes `unshare` unsafe.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(std::io::Error::from)
}

/// Brings the interface `lo` up (a new network namespace has it down).
pub fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let socket = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None)?;
    // SAFETY: `ifreq` is plain data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads an `ifreq`, which `request` is, and `socket` is an open socket.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request as *const libc::ifreq) };
    if result == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
