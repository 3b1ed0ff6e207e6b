//! Framed streams: how the worker protocol carries data of unknown length (NARs in `AddToStore`
//! from 1.25, `AddMultipleToStore`, `AddToStoreNar` from 1.23, ...) without holding it whole.
//!
//! A framed stream is a sequence of frames, each a `u64` length followed by exactly that many raw
//! bytes (no padding), ended by a frame of length 0.
//!
//! - [`FramedWriter`] is an `AsyncWrite` that cuts what is written into frames of at most
//!   [`FramedWriter::DEFAULT_FRAME_SIZE`] bytes. Large writes go out as frames straight from
//!   the caller's buffer, without a copy; small ones are gathered into a frame first. It buffers
//!   at most one frame plus one frame waiting to be sent, so a slow peer slows the producer down
//!   (backpressure).
//!   [`FramedWriter::finish`] sends the end marker; [`FramedWriter::abort`] drops what is still
//!   buffered and sends the end marker, as Nix does when the daemon reports an error mid-stream.
//! - [`FramedReader`] is an `AsyncRead` that yields the payload and then end-of-file. It never
//!   reads past the end marker, streams each frame through without buffering it (reading the
//!   next frame's header together with the end of a frame's payload when there is room), and refuses
//!   frames longer than [`crate::Limits::max_frame_len`]. If a consumer stops early (an error, or a
//!   frame too large), [`FramedReader::drain`] skips the rest up to the end marker so the
//!   connection stays usable.

mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::FramedReader;
pub use writer::FramedWriter;
