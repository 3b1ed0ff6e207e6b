//! Serialising a file system tree, as Nix 2.8's `nix-store --dump` does.

use std::ffi::OsString;
use std::fs::{self, File, FileType};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::errors::WriteError;
use super::writer::Writer;
use crate::hash::{Algorithm, Hash, HashingWriter};

/// Writes the NAR of the tree at `path` to `out`, byte-for-byte as `nix-store --dump` does.
///
/// The root is not followed if it is a symlink. Directory entries are sorted by the bytes of their
/// names; a regular file is `executable` when its owner may execute it (`st_mode & S_IXUSR`, as in
/// Nix); a symlink holds its raw target. Names and targets are raw OS bytes. Sockets, FIFOs and
/// devices are refused with [`WriteError::UnsupportedFileType`]; a file whose type or size changes
/// during the dump gives [`WriteError::FileChanged`].
///
/// `out` receives few, large writes (contents in chunks of up to 256 KiB), so it needs no extra
/// buffering.
pub fn dump_path<W: Write + ?Sized>(path: &Path, out: &mut W) -> Result<(), WriteError> {
    let mut writer = Writer::new(out);
    let root_type = fs::symlink_metadata(path).map_err(|e| fs_error(path, e))?.file_type();
    let mut current = path.to_path_buf();
    dump_node(&mut writer, &mut current, root_type)?;
    writer.finish()?;
    Ok(())
}

/// The hash of the NAR of the tree at `path` and the NAR's size (Nix's "NAR hash" and "NAR size").
pub fn hash_path(path: &Path, algo: Algorithm) -> Result<(Hash, u64), WriteError> {
    let mut hashing = HashingWriter::new(io::sink(), algo);
    dump_path(path, &mut hashing)?;
    let (hash, size, _) = hashing.finish();
    Ok((hash, size))
}

fn fs_error(path: &Path, source: io::Error) -> WriteError {
    WriteError::Fs { path: path.to_path_buf(), source }
}

fn unsupported_kind(file_type: &FileType) -> &'static str {
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "unknown"
    }
}

/// Writes the node at `path` (whose type is already known), leaving `path` as it found it.
fn dump_node<W: Write>(writer: &mut Writer<W>, path: &mut PathBuf, file_type: FileType) -> Result<(), WriteError> {
    if file_type.is_file() {
        dump_regular(writer, path)
    } else if file_type.is_dir() {
        dump_directory(writer, path)
    } else if file_type.is_symlink() {
        let target = fs::read_link(&*path).map_err(|e| fs_error(path, e))?;
        writer.symlink(target.as_os_str().as_bytes())
    } else {
        Err(WriteError::UnsupportedFileType { path: path.clone(), kind: unsupported_kind(&file_type) })
    }
}

fn dump_regular<W: Write>(writer: &mut Writer<W>, path: &Path) -> Result<(), WriteError> {
    let mut file = File::open(path).map_err(|e| fs_error(path, e))?;
    // Mode and size come from the open file, so they describe the bytes we read.
    let meta = file.metadata().map_err(|e| fs_error(path, e))?;
    if !meta.is_file() {
        return Err(WriteError::FileChanged { path: path.to_path_buf() });
    }
    let executable = meta.permissions().mode() & 0o100 != 0;
    writer.regular(executable, meta.len(), &mut file).map_err(|e| match e {
        WriteError::Contents(source) => fs_error(path, source),
        WriteError::ContentsTooShort { .. } | WriteError::ContentsTooLong { .. } => {
            WriteError::FileChanged { path: path.to_path_buf() }
        }
        other => other,
    })
}

fn dump_directory<W: Write>(writer: &mut Writer<W>, path: &mut PathBuf) -> Result<(), WriteError> {
    let mut entries: Vec<(OsString, FileType)> = Vec::new();
    for entry in fs::read_dir(&*path).map_err(|e| fs_error(path, e))? {
        let entry = entry.map_err(|e| fs_error(path, e))?;
        // Uses the type from the directory listing when the file system provides one (no stat).
        let file_type = entry.file_type().map_err(|e| fs_error(&entry.path(), e))?;
        entries.push((entry.file_name(), file_type));
    }
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    writer.start_directory()?;
    for (name, file_type) in entries {
        writer.entry(name.as_bytes())?;
        path.push(&name);
        let result = dump_node(writer, path, file_type);
        path.pop();
        result?;
    }
    writer.end_directory()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_fifos_and_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
        let mut out = Vec::new();
        match dump_path(dir.path(), &mut out) {
            Err(WriteError::UnsupportedFileType { path, kind: "socket" }) => assert_eq!(path, socket_path),
            other => panic!("unexpected {other:?}"),
        }
        let status = std::process::Command::new("mkfifo").arg(dir.path().join("fifo")).status().unwrap();
        assert!(status.success());
        std::fs::remove_file(&socket_path).unwrap();
        assert!(matches!(
            dump_path(dir.path(), &mut Vec::new()),
            Err(WriteError::UnsupportedFileType { kind: "FIFO", .. })
        ));
    }

    #[test]
    fn missing_path_is_an_fs_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(dump_path(&missing, &mut Vec::new()), Err(WriteError::Fs { path, .. }) if path == missing));
    }

    #[test]
    fn only_the_owner_exec_bit_counts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let mut seen = Vec::new();
        for mode in [0o644, 0o655, 0o611, 0o744, 0o500] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut out = Vec::new();
            dump_path(&file, &mut out).unwrap();
            seen.push(out.windows(10).any(|w| w == b"executable"));
        }
        assert_eq!(seen, [false, false, false, true, true]);
    }

    #[test]
    fn root_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("l");
        symlink("/nonexistent/target", &link).unwrap();
        let mut out = Vec::new();
        dump_path(&link, &mut out).unwrap();
        assert!(out.windows(19).any(|w| w == b"/nonexistent/target"));
        let (hash, size) = hash_path(&link, Algorithm::Sha256).unwrap();
        assert_eq!(size, out.len() as u64);
        assert_eq!(hash, Hash::of(Algorithm::Sha256, &out));
    }
}
