//! Wire primitives shared by the worker and serve protocols.
//!
//! Every integer is a `u64`, little-endian. A byte string is its length (`u64`), its bytes, and
//! zero bytes up to the next multiple of 8; readers reject non-zero padding. Lists, sets and maps
//! are a count followed by their elements (a map alternates keys and values).
//!
//! - [`Decoder`] decodes from a byte slice. It never blocks and never guesses: when the slice ends
//!   inside a value it returns [`DecodeError::Incomplete`] with how many more bytes are needed at
//!   least, which is distinct from a malformed value ([`DecodeError::Invalid`]).
//! - [`encoder`] appends values to a [`bytes::BytesMut`].
//! - [`io`] reads primitives straight from an [`tokio::io::AsyncRead`] and writes them to an
//!   [`tokio::io::AsyncWrite`].
//! - [`WireReader`] buffers an `AsyncRead` and decodes whole typed values with the [`Decoder`],
//!   pulling more bytes whenever it reports `Incomplete`.

mod decoder;
pub mod encoder;
pub mod io;
mod reader;

pub use decoder::{DecodeError, Decoder};
pub use reader::WireReader;

/// How many zero bytes follow a byte string of `len` bytes.
pub const fn padding_len(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}
