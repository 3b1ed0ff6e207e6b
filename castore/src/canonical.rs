//! The canonical metadata of materialised trees and pool files, as Nix's store canonicalises
//! them: read-only modes, no setuid/setgid/sticky bits, mtime 1 (one second after the epoch).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Mode of a non-executable file.
pub const FILE_MODE: u32 = 0o444;

/// Mode of an executable file.
pub const EXECUTABLE_MODE: u32 = 0o555;

/// Mode of a directory.
pub const DIRECTORY_MODE: u32 = 0o555;

/// The modification time of every canonical file, directory and symlink, in seconds since the
/// epoch.
pub const MTIME_SECS: u64 = 1;

/// [`MTIME_SECS`] as a [`SystemTime`].
pub fn mtime() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MTIME_SECS)
}

/// The mode of a file, executable or not.
pub const fn file_mode(executable: bool) -> u32 {
    if executable {
        EXECUTABLE_MODE
    } else {
        FILE_MODE
    }
}
