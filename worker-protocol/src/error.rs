//! [`ProtocolError`]: everything that can go wrong while speaking the protocols.

use std::io;

use nix_formats::content_address::ContentAddressError;
use nix_formats::derived_path::DerivedPathError;
use nix_formats::hash::HashError;
use nix_formats::realisation::RealisationError;
use nix_formats::store_path::StorePathError;

use crate::ops::Opcode;
use crate::version::ProtocolVersion;

/// An error while encoding, decoding or exchanging protocol messages.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A decoded value was followed by bytes that belong to nothing.
    #[error("{0} unexpected bytes after the value")]
    TrailingBytes(usize),
    /// The padding after a byte string was not all zeros.
    #[error("non-zero padding after a byte string")]
    NonZeroPadding,
    /// A byte string is longer than allowed.
    #[error("string of {len} bytes is longer than the limit of {max}")]
    StringTooLong {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A collection has more elements than allowed.
    #[error("collection of {count} items is larger than the limit of {max}")]
    TooManyItems {
        /// The declared count.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// Collections or derived paths are nested deeper than allowed.
    #[error("values are nested deeper than the limit of {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// One message needs more buffered bytes than allowed.
    #[error("message is larger than the limit of {max} bytes")]
    MessageTooLarge {
        /// The limit.
        max: usize,
    },
    /// A frame of a framed stream is larger than allowed.
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    FrameTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A number does not fit the type it is read into.
    #[error("number {value} is too large for {what} (at most {max})")]
    IntegerTooLarge {
        /// What was read.
        what: &'static str,
        /// The number on the wire.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A string that must be UTF-8 is not.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A number that stands for an enumeration or a flag has no meaning.
    #[error("invalid value {value} for {what}")]
    BadValue {
        /// What was read.
        what: &'static str,
        /// The number on the wire.
        value: u64,
    },
    /// A store path is malformed or outside the store directory.
    #[error("bad store path: {0}")]
    BadStorePath(#[from] StorePathError),
    /// A hash is malformed.
    #[error("bad hash: {0}")]
    BadHash(#[from] HashError),
    /// A content address is malformed.
    #[error("bad content address: {0}")]
    BadContentAddress(#[from] ContentAddressError),
    /// A derived path is malformed.
    #[error("bad derived path: {0}")]
    BadDerivedPath(#[from] DerivedPathError),
    /// A derivation output id or realisation is malformed.
    #[error("bad realisation: {0}")]
    BadRealisation(#[from] RealisationError),
    /// A value cannot be written at this protocol version.
    #[error("cannot send {what} at protocol version {version}")]
    Unrepresentable {
        /// What could not be written.
        what: String,
        /// The version in use.
        version: ProtocolVersion,
    },
    /// A value that must be sent is missing.
    #[error("missing {0}")]
    MissingField(&'static str),
    /// An operation code that is not known.
    #[error("unknown operation code {0}")]
    UnknownOpcode(u64),
    /// An operation that Nix has removed (`QueryFailedPaths`, `ClearFailedPaths`). The text is
    /// Nix's own error message.
    #[error("Removed operation {0}")]
    RemovedOperation(u64),
    /// A store path that must be a derivation (`.drv`) is not.
    #[error("path '{0}' is not a derivation")]
    NotADerivation(String),
    /// A derivation output on the wire is malformed.
    #[error("bad derivation output '{output}': {message}")]
    BadDerivationOutput {
        /// The output's name.
        output: String,
        /// What is wrong.
        message: &'static str,
    },
    /// The peer sent the wrong magic number.
    #[error("protocol mismatch: expected magic {expected:#x}, got {got:#x}")]
    BadMagic {
        /// The magic number that was expected.
        expected: u64,
        /// The number that came.
        got: u64,
    },
    /// The peer's protocol version is not supported.
    #[error("unsupported protocol version {version} (supported: {min} to {max})")]
    UnsupportedVersion {
        /// The version the peer offered, or the negotiated one.
        version: ProtocolVersion,
        /// The oldest version supported.
        min: ProtocolVersion,
        /// The newest version supported.
        max: ProtocolVersion,
    },
    /// The peer sent a logger message that is not allowed at this point.
    #[error("unexpected message {0:#x} from the daemon")]
    UnexpectedMessage(u64),
    /// A string that must be one particular word held something else (such as the type name of
    /// a structured error, which must be `Error`).
    #[error("invalid {what}: {value:?}")]
    BadString {
        /// What was read.
        what: &'static str,
        /// The string on the wire, cut to its first 100 characters.
        value: String,
    },
    /// A logger message that belongs inside an operation was to be sent while none runs (see
    /// [`crate::logger::ServerLogger::start_work`]).
    #[error("cannot send {0} while no operation is running")]
    LoggerIdle(&'static str),
    /// The peer reported an error.
    #[error("the peer reported an error: {message}")]
    Remote {
        /// The error message.
        message: String,
        /// The exit status it carries (1 when not given).
        status: u64,
    },
    /// A NAR on the connection, or one given to be sent, is malformed.
    #[error(transparent)]
    BadNar(#[from] nix_formats::nar::ReadError),
    /// Reading the data to be sent (a file, a NAR, a log) failed. The error is local; the
    /// connection itself is in step unless [`ProtocolError::ConnectionBroken`] follows.
    #[error("cannot read the data to send: {0}")]
    Source(#[source] io::Error),
    /// Writing data received from the peer (a NAR, an export) to its local destination failed.
    /// The connection itself is in step unless [`ProtocolError::ConnectionBroken`] follows.
    #[error("cannot write the received data: {0}")]
    Sink(#[source] io::Error),
    /// An earlier error, or an operation abandoned half-way, has left the connection out of step:
    /// it cannot be used any more.
    #[error("the connection is unusable after an earlier error")]
    ConnectionBroken,
    /// A server tried to answer a request with the reply to another operation.
    #[error("cannot answer {request} with the reply to {response}")]
    ResponseMismatch {
        /// The operation being served.
        request: Opcode,
        /// The operation the reply belongs to.
        response: Opcode,
    },
    /// A connection method was called at the wrong point (a reply with no request pending, say).
    #[error("{0}")]
    OutOfTurn(&'static str),
    /// Reading or writing the connection failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl ProtocolError {
    /// Turns this error into an [`io::Error`] (for [`tokio::io::AsyncRead`] implementations),
    /// keeping I/O errors as they are and marking end of input as [`io::ErrorKind::UnexpectedEof`].
    pub fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            Self::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// Builds an error from an [`io::Error`], recovering a [`ProtocolError`] wrapped by
    /// [`ProtocolError::into_io`] and turning a bare end of input into [`ProtocolError::UnexpectedEof`].
    pub fn from_io(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<ProtocolError>()) {
            let kind = e.kind();
            return match e.into_inner().map(|inner| inner.downcast::<ProtocolError>()) {
                Some(Ok(p)) => *p,
                _ => Self::Io(io::Error::from(kind)),
            };
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Self::UnexpectedEof;
        }
        Self::Io(e)
    }
}
