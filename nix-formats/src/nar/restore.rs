//! Unpacking a NAR into the file system, as Nix 2.8's `nix-store --restore` does.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::errors::{ReadError, RestoreError};
use super::limits::Limits;
use super::reader::{Event, Reader};

/// Size of the buffer that carries file contents from the archive to the files.
const COPY_BUFFER_SIZE: usize = 256 * 1024;

/// Creates the tree that the NAR read from `input` describes at `dest`, which must not exist.
///
/// Modes follow Nix 2.8: directories are created with mode 0777 and files with 0666, both reduced
/// by the umask; an executable file then gets all three execute bits added (`chmod +x`, ignoring the
/// umask). Symlinks get their raw targets. Reading stops at the archive's end; `input` is read with
/// small reads, so wrap an unbuffered input in a [`std::io::BufReader`].
///
/// On error the partly restored tree is left in place.
pub fn restore<R: Read>(input: R, dest: &Path, limits: &Limits) -> Result<(), RestoreError> {
    let mut reader = Reader::new(input, *limits);
    let mut buffer = Vec::new();
    let mut target = Vec::new();
    loop {
        match reader.next()? {
            None => return Ok(()),
            Some(Event::Entry { .. } | Event::DirectoryEnd) => {}
            Some(Event::DirectoryStart) => {
                let path = node_path(dest, reader.path());
                fs::create_dir(&path).map_err(|source| RestoreError::Fs { path, source })?;
            }
            Some(Event::Symlink { target: t }) => {
                target.clear();
                target.extend_from_slice(t);
                let path = node_path(dest, reader.path());
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|source| RestoreError::Fs { path, source })?;
            }
            Some(Event::Regular { executable, size }) => {
                let path = node_path(dest, reader.path());
                if size > 0 && buffer.is_empty() {
                    buffer = vec![0u8; COPY_BUFFER_SIZE];
                }
                restore_regular(&mut reader, &path, executable, &mut buffer)
                    .map_err(|e| e.with_path(&path))?;
            }
        }
    }
}

/// A failure while restoring one file: of the archive, or of the file system (path added later).
enum FileError {
    Read(ReadError),
    Fs(io::Error),
}

impl FileError {
    fn with_path(self, path: &Path) -> RestoreError {
        match self {
            Self::Read(e) => RestoreError::Read(e),
            Self::Fs(source) => RestoreError::Fs { path: path.to_path_buf(), source },
        }
    }
}

fn restore_regular<R: Read>(
    reader: &mut Reader<R>,
    path: &Path,
    executable: bool,
    buffer: &mut [u8],
) -> Result<(), FileError> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o666).open(path).map_err(FileError::Fs)?;
    if executable {
        let mode = file.metadata().map_err(FileError::Fs)?.permissions().mode();
        file.set_permissions(fs::Permissions::from_mode(mode | 0o111)).map_err(FileError::Fs)?;
    }
    loop {
        let n = reader.read_contents(buffer).map_err(FileError::Read)?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..n]).map_err(FileError::Fs)?;
    }
}

/// `dest` joined with a node's path inside the archive.
fn node_path(dest: &Path, relative: &[u8]) -> PathBuf {
    if relative.is_empty() {
        return dest.to_path_buf();
    }
    let mut full = OsString::with_capacity(dest.as_os_str().len() + 1 + relative.len());
    full.push(dest.as_os_str());
    full.push("/");
    full.push(OsStr::from_bytes(relative));
    PathBuf::from(full)
}
