//! The message codes of the daemon's logger channel ("stderr"), which precede every reply.
//!
//! Only what the handshake needs is handled here: after the handshake the daemon sends
//! [`STDERR_NEXT`] lines (startup messages) and then [`STDERR_LAST`].

/// A log line follows (a string).
pub const STDERR_NEXT: u64 = 0x6f6c_6d67;
/// The daemon wants data from the client: a `u64` count follows, the client answers with a
/// byte string of at most that many bytes.
pub const STDERR_READ: u64 = 0x6461_7461;
/// Data for the client's sink follows (a string).
pub const STDERR_WRITE: u64 = 0x6461_7416;
/// The operation's log is over; its reply follows.
pub const STDERR_LAST: u64 = 0x616c_7473;
/// The operation failed; an error follows.
pub const STDERR_ERROR: u64 = 0x6378_7470;
/// An activity starts.
pub const STDERR_START_ACTIVITY: u64 = 0x5354_5254;
/// An activity stops.
pub const STDERR_STOP_ACTIVITY: u64 = 0x5354_4f50;
/// An activity reports a result.
pub const STDERR_RESULT: u64 = 0x5253_4c54;

use tokio::io::AsyncRead;

use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::version::ProtocolVersion;
use crate::wire::io::{read_count, read_string, read_u64};

/// Reads the error that follows [`STDERR_ERROR`] and returns it as [`ProtocolError::Remote`].
///
/// From worker 1.26 the error is structured: the type name (`Error`), level, a name that is no
/// longer used, the message, a position flag (always 0) and a list of traces (position flag 0 and
/// a message each). Before, it is the message and an exit status.
pub async fn read_error<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    version: ProtocolVersion,
    limits: &Limits,
) -> Result<ProtocolError, ProtocolError> {
    let max = limits.max_string_len;
    if !version.at_least(1, 26) {
        let message = read_string(r, max).await?;
        let status = read_u64(r).await?;
        return Ok(ProtocolError::Remote { message, status });
    }
    let _type = read_string(r, max).await?;
    let _level = read_u64(r).await?;
    let _name = read_string(r, max).await?;
    let mut message = read_string(r, max).await?;
    let _have_pos = read_u64(r).await?;
    let traces = read_count(r, limits.max_collection_len).await?;
    for _ in 0..traces {
        let _have_pos = read_u64(r).await?;
        let trace = read_string(r, max).await?;
        message.push_str("\n… ");
        message.push_str(&trace);
    }
    Ok(ProtocolError::Remote { message, status: 1 })
}
