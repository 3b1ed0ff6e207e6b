//! Both sides of the worker-protocol handshake.

use std::collections::BTreeSet;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{ClientHandshake, ClientSettings, Negotiated, ServerHandshake, WorkerConfig};
use crate::error::ProtocolError;
use crate::ser::WireCtx;
use crate::stderr::{read_error, STDERR_ERROR, STDERR_LAST, STDERR_NEXT};
use crate::types::ClientHandshakeInfo;
use crate::version::{ProtocolVersion, WORKER_MAGIC_1, WORKER_MAGIC_2};
use crate::wire::encoder::{put_str, put_strs, put_u64};
use crate::wire::io::{read_string, read_string_set, read_u64, read_value, write_value};

async fn send<S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, buf: &[u8]) -> Result<(), ProtocolError> {
    stream.write_all(buf).await.map_err(ProtocolError::from_io)?;
    stream.flush().await.map_err(ProtocolError::from_io)
}

async fn read_magic<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, expected: u64) -> Result<(), ProtocolError> {
    let got = read_u64(stream).await?;
    if got != expected {
        return Err(ProtocolError::BadMagic { expected, got });
    }
    Ok(())
}

fn unsupported(version: ProtocolVersion, cfg: &WorkerConfig) -> ProtocolError {
    ProtocolError::UnsupportedVersion { version, min: cfg.effective_min_version(), max: cfg.version }
}

/// Checks the peer's major version and the negotiated version against `cfg`.
fn agree(peer: ProtocolVersion, cfg: &WorkerConfig) -> Result<ProtocolVersion, ProtocolError> {
    if peer.major() != 1 {
        return Err(unsupported(peer, cfg));
    }
    let version = peer.min(cfg.version);
    if version < cfg.effective_min_version() {
        return Err(unsupported(version, cfg));
    }
    Ok(version)
}

fn features_buf(features: &BTreeSet<String>) -> BytesMut {
    let mut buf = BytesMut::new();
    put_strs(&mut buf, features.iter().map(String::as_str));
    buf
}

/// The most features a peer may announce, and the longest feature name (Nix's are short words).
const MAX_FEATURES: usize = 1024;
const MAX_FEATURE_LEN: usize = 1024;

async fn read_features<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    cfg: &WorkerConfig,
) -> Result<BTreeSet<String>, ProtocolError> {
    let count = cfg.limits.max_collection_len.min(MAX_FEATURES);
    read_string_set(stream, count, cfg.limits.max_string_len.min(MAX_FEATURE_LEN)).await
}

/// Server steps 1–3: reads the client's magic, answers with magic 2 and `cfg.version` at once,
/// reads the client's version and, from 1.38, exchanges features.
pub async fn server_negotiate<S>(stream: &mut S, cfg: &WorkerConfig) -> Result<Negotiated, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    read_magic(stream, WORKER_MAGIC_1).await?;
    let mut reply = BytesMut::new();
    put_u64(&mut reply, WORKER_MAGIC_2);
    put_u64(&mut reply, cfg.version.to_wire());
    send(stream, &reply).await?;
    let client = ProtocolVersion::from_wire(read_u64(stream).await?)?;
    let version = agree(client, cfg)?;
    let mut features = BTreeSet::new();
    if version.at_least(1, 38) {
        let theirs = read_features(stream, cfg).await?;
        send(stream, &features_buf(&cfg.features)).await?;
        features = theirs.intersection(&cfg.features).cloned().collect();
    }
    Ok(Negotiated { version, features })
}

/// Server steps 4–5 up to, not including, the logger messages: reads the client's obsolete
/// settings, then sends `info` (as far as the version carries it) and flushes.
pub async fn server_post_handshake<S>(
    stream: &mut S,
    negotiated: &Negotiated,
    info: &ClientHandshakeInfo,
    cfg: &WorkerConfig,
) -> Result<ClientSettings, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let v = negotiated.version;
    let mut settings = ClientSettings::default();
    if v.at_least(1, 14) && read_u64(stream).await? != 0 {
        settings.cpu_affinity = Some(read_u64(stream).await?);
    }
    if v.at_least(1, 11) {
        settings.reserve_space = read_u64(stream).await? != 0;
    }
    let ctx = WireCtx::worker(v).with_limits(cfg.limits);
    write_value(stream, info, &ctx).await?;
    stream.flush().await.map_err(ProtocolError::from_io)?;
    Ok(settings)
}

/// The whole server side: negotiation, the client's settings, `info`, then each of
/// `startup_messages` as `STDERR_NEXT` and a final `STDERR_LAST`, flushed. The connection is then
/// ready for the client's first operation.
pub async fn server_handshake<S>(
    stream: &mut S,
    cfg: &WorkerConfig,
    info: &ClientHandshakeInfo,
    startup_messages: &[String],
) -> Result<ServerHandshake, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let negotiated = server_negotiate(stream, cfg).await?;
    let client = server_post_handshake(stream, &negotiated, info, cfg).await?;
    let mut buf = BytesMut::new();
    for msg in startup_messages {
        put_u64(&mut buf, STDERR_NEXT);
        put_str(&mut buf, msg);
    }
    put_u64(&mut buf, STDERR_LAST);
    send(stream, &buf).await?;
    Ok(ServerHandshake { negotiated, client })
}

/// Client steps 1–3: sends magic 1 and `cfg.version` in one write, checks the server's magic and
/// version (major 1, at least 1.10 and `cfg.min_version`) and, from 1.38, exchanges features.
pub async fn client_negotiate<S>(stream: &mut S, cfg: &WorkerConfig) -> Result<Negotiated, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut hello = BytesMut::new();
    put_u64(&mut hello, WORKER_MAGIC_1);
    put_u64(&mut hello, cfg.version.to_wire());
    send(stream, &hello).await?;
    read_magic(stream, WORKER_MAGIC_2).await?;
    let server = ProtocolVersion::from_wire(read_u64(stream).await?)?;
    let version = agree(server, cfg)?;
    let mut features = BTreeSet::new();
    if version.at_least(1, 38) {
        send(stream, &features_buf(&cfg.features)).await?;
        let theirs = read_features(stream, cfg).await?;
        features = theirs.intersection(&cfg.features).cloned().collect();
    }
    Ok(Negotiated { version, features })
}

/// Client steps 4–5 up to, not including, the logger messages: sends "no CPU affinity" and "no
/// reserved space", flushes, and reads the server's handshake info.
pub async fn client_post_handshake<S>(
    stream: &mut S,
    negotiated: &Negotiated,
    cfg: &WorkerConfig,
) -> Result<ClientHandshakeInfo, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let v = negotiated.version;
    let mut buf = BytesMut::new();
    if v.at_least(1, 14) {
        put_u64(&mut buf, 0);
    }
    if v.at_least(1, 11) {
        put_u64(&mut buf, 0);
    }
    send(stream, &buf).await?;
    let ctx = WireCtx::worker(v).with_limits(cfg.limits);
    read_value(stream, &ctx).await
}

/// The whole client side: negotiation, settings, the server's info, and its startup messages up
/// to the first `STDERR_LAST`. An error the server reports instead becomes
/// [`ProtocolError::Remote`]; any other logger message is [`ProtocolError::UnexpectedMessage`].
pub async fn client_handshake<S>(stream: &mut S, cfg: &WorkerConfig) -> Result<ClientHandshake, ProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let negotiated = client_negotiate(stream, cfg).await?;
    let info = client_post_handshake(stream, &negotiated, cfg).await?;
    let mut startup_messages = Vec::new();
    loop {
        match read_u64(stream).await? {
            STDERR_LAST => break,
            STDERR_NEXT => {
                if startup_messages.len() >= cfg.limits.max_collection_len {
                    return Err(ProtocolError::TooManyItems {
                        count: startup_messages.len() as u64 + 1,
                        max: cfg.limits.max_collection_len,
                    });
                }
                startup_messages.push(read_string(stream, cfg.limits.max_string_len).await?);
            }
            STDERR_ERROR => return Err(read_error(stream, negotiated.version, &cfg.limits).await?),
            other => return Err(ProtocolError::UnexpectedMessage(other)),
        }
    }
    Ok(ClientHandshake { negotiated, info, startup_messages })
}
