//! Unix socket addresses longer than `sun_path` allows (108 bytes): such a socket is reached
//! through `/proc/self/fd/<directory fd>/<name>`, a short path to the same place (Linux).

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Longest path used as it is (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_DIRECT: usize = 100;

/// Calls `f` with `path`, or, if `path` is too long for a socket address, with a short path to
/// the same file through an open descriptor of its directory.
pub(crate) fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= MAX_DIRECT {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return f(path) };
    let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let dir_fd = rustix::fs::open(dir, flags, rustix::fs::Mode::empty())?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir_fd.as_raw_fd())).join(name);
    let result = f(&short);
    drop(dir_fd);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn a_socket_in_a_deep_directory() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let socket = deep.join("socket");
        assert!(UnixListener::bind(&socket).is_err(), "too long as it is");
        let listener = with_short_path(&socket, |p| UnixListener::bind(p)).unwrap();
        assert!(socket.exists());
        let _client = with_short_path(&socket, |p| UnixStream::connect(p)).unwrap();
        assert!(listener.accept().is_ok());
    }
}
