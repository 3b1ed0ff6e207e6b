//! Both sides of the serve-protocol handshake (`nix-store --serve`).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::ProtocolError;
use crate::version::{ProtocolVersion, SERVE_MAGIC_1, SERVE_MAGIC_2};
use crate::wire::encoder::put_u64;
use crate::wire::io::read_u64;

fn check_major(peer: ProtocolVersion, local: ProtocolVersion) -> Result<ProtocolVersion, ProtocolError> {
    if peer.major() != 2 {
        return Err(ProtocolError::UnsupportedVersion {
            version: peer,
            min: ProtocolVersion::new(2, 0),
            max: local,
        });
    }
    Ok(peer.min(local))
}

async fn hello<S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, magic: u64, version: ProtocolVersion) -> Result<(), ProtocolError> {
    let mut buf = BytesMut::new();
    put_u64(&mut buf, magic);
    put_u64(&mut buf, version.to_wire());
    stream.write_all(&buf).await.map_err(ProtocolError::from_io)?;
    stream.flush().await.map_err(ProtocolError::from_io)
}

async fn read_hello<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, magic: u64) -> Result<(), ProtocolError> {
    let got = read_u64(stream).await?;
    if got != magic {
        return Err(ProtocolError::BadMagic { expected: magic, got });
    }
    Ok(())
}

/// Client side: sends magic and `local` in one write, checks the server's magic and that its
/// major version is 2, and returns the lower of the two versions.
pub async fn serve_client_handshake<S>(stream: &mut S, local: ProtocolVersion) -> Result<ProtocolVersion, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    hello(stream, SERVE_MAGIC_1, local).await?;
    read_hello(stream, SERVE_MAGIC_2).await?;
    let server = ProtocolVersion::from_wire(read_u64(stream).await?)?;
    check_major(server, local)
}

/// Server side: reads the client's magic, answers with its own magic and `local` at once, reads
/// the client's version (major 2) and returns the lower of the two.
pub async fn serve_server_handshake<S>(stream: &mut S, local: ProtocolVersion) -> Result<ProtocolVersion, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    read_hello(stream, SERVE_MAGIC_1).await?;
    hello(stream, SERVE_MAGIC_2, local).await?;
    let client = ProtocolVersion::from_wire(read_u64(stream).await?)?;
    check_major(client, local)
}
