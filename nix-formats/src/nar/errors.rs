//! Typed errors of the NAR writer, reader, restorer and copier.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Shows raw bytes in an error message: lossy UTF-8, cut to a sane length.
pub(crate) struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 300;
        let cut = &self.0[..self.0.len().min(MAX)];
        write!(f, "{}", String::from_utf8_lossy(cut).escape_debug())?;
        if self.0.len() > MAX {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A length-limited field of a NAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A keyword such as `type` or `contents`.
    Tag,
    /// A directory entry name.
    Name,
    /// A symlink target.
    SymlinkTarget,
    /// The path of a node inside the archive.
    Path,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tag => "tag",
            Self::Name => "entry name",
            Self::SymlinkTarget => "symlink target",
            Self::Path => "path",
        })
    }
}

/// Errors from reading a NAR.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input failed.
    #[error("reading NAR: {0}")]
    Io(#[source] io::Error),
    /// The input ended inside the archive.
    #[error("unexpected end of NAR")]
    Truncated,
    /// The input does not start with the `nix-archive-1` magic.
    #[error("bad archive: input doesn't look like a Nix archive")]
    NotANar,
    /// Padding after a string holds a non-zero byte.
    #[error("bad archive: non-zero padding")]
    NonZeroPadding,
    /// A keyword other than the one the grammar requires here.
    #[error("bad archive: expected tag '{expected}', got '{}'", Lossy(got))]
    BadTag {
        /// What the grammar allows at this point.
        expected: &'static str,
        /// The keyword found.
        got: Vec<u8>,
    },
    /// A node type other than `regular`, `symlink` or `directory`.
    #[error("bad archive: unknown file type '{}'", Lossy(got))]
    UnknownFileType {
        /// The type found.
        got: Vec<u8>,
    },
    /// The `executable` marker is followed by a non-empty string.
    #[error("bad archive: executable marker has non-empty value")]
    NonEmptyExecutableMarker,
    /// An entry name is empty, `.`, `..`, or contains `/` or NUL.
    #[error("bad archive: NAR contains invalid file name '{}'", Lossy(name))]
    InvalidName {
        /// The name found.
        name: Vec<u8>,
    },
    /// An entry name is not greater than the previous one in its directory.
    #[error("bad archive: NAR directory is not sorted ('{}' after '{}')", Lossy(name), Lossy(previous))]
    UnsortedOrDuplicate {
        /// The previous entry's name.
        previous: Vec<u8>,
        /// The offending name.
        name: Vec<u8>,
    },
    /// A symlink target is empty or contains NUL.
    #[error("bad archive: NAR contains invalid symlink target '{}'", Lossy(target))]
    InvalidSymlinkTarget {
        /// The target found.
        target: Vec<u8>,
    },
    /// Directories nest deeper than [`Limits::max_depth`](super::Limits::max_depth).
    #[error("bad archive: NAR directory nesting exceeds maximum depth of {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A field is longer than its limit.
    #[error("bad archive: {what} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Which field.
        what: Field,
        /// Its declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier error left the reader in an unknown position.
    #[error("NAR reader used after an error")]
    Poisoned,
}

impl ReadError {
    /// Whether the input ended early (as opposed to being malformed or failing).
    pub fn is_truncated(&self) -> bool {
        matches!(self, Self::Truncated)
    }

    /// Whether the archive is malformed: neither truncated, nor an I/O failure, nor misuse.
    pub fn is_malformed(&self) -> bool {
        !matches!(self, Self::Truncated | Self::Io(_) | Self::Poisoned)
    }

    /// Maps an I/O error of the input: an early end becomes [`ReadError::Truncated`].
    pub(crate) fn from_input(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(e)
        }
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => e,
            ReadError::Truncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Errors from writing a NAR with [`Writer`](super::Writer) or [`dump_path`](super::dump_path).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output failed.
    #[error("writing NAR: {0}")]
    Io(#[source] io::Error),
    /// The reader that supplies a file's contents failed.
    #[error("reading file contents for NAR: {0}")]
    Contents(#[source] io::Error),
    /// A file's contents ended before the announced size.
    #[error("file contents have {got} bytes, fewer than the announced {expected}")]
    ContentsTooShort {
        /// The announced size.
        expected: u64,
        /// The bytes actually supplied.
        got: u64,
    },
    /// A file's contents go on after the announced size.
    #[error("file contents are longer than the announced {expected} bytes")]
    ContentsTooLong {
        /// The announced size.
        expected: u64,
    },
    /// An entry name is empty, `.`, `..`, longer than 255 bytes, or contains `/` or NUL.
    #[error("invalid NAR entry name '{}'", Lossy(name))]
    InvalidName {
        /// The name.
        name: Vec<u8>,
    },
    /// An entry name is not greater than the previous one in its directory.
    #[error("NAR entry '{}' is not sorted after '{}'", Lossy(name), Lossy(previous))]
    UnsortedOrDuplicate {
        /// The previous entry's name.
        previous: Vec<u8>,
        /// The offending name.
        name: Vec<u8>,
    },
    /// A symlink target is empty, longer than 4095 bytes, or contains NUL.
    #[error("invalid NAR symlink target '{}'", Lossy(target))]
    InvalidSymlinkTarget {
        /// The target.
        target: Vec<u8>,
    },
    /// A [`Writer`](super::Writer) method was called where the archive's grammar does not allow it.
    #[error("NAR writer misuse: {call} called where {expected} was expected")]
    OutOfOrder {
        /// The method called.
        call: &'static str,
        /// What the archive needed next.
        expected: &'static str,
    },
    /// A file system call failed while dumping a path.
    #[error("{}: {source}", path.display())]
    Fs {
        /// The path concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The tree holds a file that a NAR cannot represent (socket, FIFO, device).
    #[error("file '{}' has an unsupported type ({kind})", path.display())]
    UnsupportedFileType {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file changed (type or size) while it was being dumped.
    #[error("file '{}' changed while it was being archived", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
}

/// Errors from [`restore`](super::restore).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The archive could not be read or is malformed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Creating or writing a file failed (the destination existing already is one such case).
    #[error("{}: {source}", path.display())]
    Fs {
        /// The path concerned.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// Errors from [`copy`](super::copy).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The archive could not be read or is malformed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The output failed.
    #[error("writing NAR copy: {0}")]
    Write(#[source] io::Error),
}
