//! The system calls the helper makes that have no safe wrapper: `fork`, `clone` into new
//! namespaces, `waitpid`, `setfsuid`, and bringing the loopback interface up (an `ioctl` on a
//! socket).

#![allow(unsafe_code)]

/// Which namespaces the helper creates.
#[derive(Debug, Clone, Copy)]
pub struct Namespaces {
    /// A network namespace of its own (builds that are not fixed-output).
    pub network: bool,
}

/// Forks the calling (single-threaded) process into new user, mount, PID (the child is its
/// PID 1), IPC and UTS namespaces, and a new network namespace if asked.
pub fn fork_into(namespaces: Namespaces) -> std::io::Result<Forked> {
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if namespaces.network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: without `CLONE_VM` and with no new stack, `clone` duplicates the process as
    // `fork` does; the caller is single-threaded, so the child's state is consistent.
    match unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
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

/// Which side of [`fork`] this is.
pub enum Forked {
    /// The new process.
    Child,
    /// The parent, with the child's process id.
    Parent(libc::pid_t),
}

/// Forks the process. Only sound while the process has one thread (the helper).
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: the helper calls this while single-threaded, so the child's state is consistent.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Waits for child `pid` and returns its raw wait status.
pub fn wait(pid: libc::pid_t) -> std::io::Result<libc::c_int> {
    let mut status = 0;
    // SAFETY: `status` is a valid place for the kernel to write to.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(status)
}

/// Ends a forked child at once, without the parent's exit handlers or buffered output.
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Sets the file-system uid and gid the calling thread creates files as (ids of its user
/// namespace).
pub fn set_fs_ids(uid: u32, gid: u32) {
    // SAFETY: `setfsuid`/`setfsgid` only change the thread's credentials; an id that cannot
    // be set leaves them as they were (checked by the caller's next file operations).
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
    }
}
