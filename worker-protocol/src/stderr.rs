//! The logger message codes and [`read_error`], kept here for existing callers; the logger
//! channel as a whole lives in [`crate::logger`].

pub use crate::logger::codes::*;

use tokio::io::AsyncRead;

use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::logger::RemoteError;
use crate::version::ProtocolVersion;

/// Reads the error that follows [`STDERR_ERROR`] (in its form for `version`) and returns it as
/// [`ProtocolError::Remote`]; see [`RemoteError::read`] for the error with all its parts.
pub async fn read_error<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    version: ProtocolVersion,
    limits: &Limits,
) -> Result<ProtocolError, ProtocolError> {
    Ok(RemoteError::read(r, version, limits).await?.into())
}
