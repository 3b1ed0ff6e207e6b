//! The handshake golden files of Nix 2.26.3 (`handshake-to-client.bin`, worker and serve), with
//! the checks upstream makes: a client replaying the file settles on the file's version, every
//! strict prefix fails, and single-byte corruptions fail or not exactly as in the README table.
//! Our servers must also produce the files byte for byte.

use tokio::io::{join, sink};
use worker_protocol::handshake::{client_negotiate, serve_client_handshake, serve_server_handshake, server_negotiate, WorkerConfig};
use worker_protocol::version::{SERVE_MAGIC_1, WORKER_MAGIC_1};
use worker_protocol::{ProtocolError, ProtocolVersion};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-2.26.3");

fn file(dir: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{dir}/handshake-to-client.bin")).unwrap()
}

/// A worker client at 1.10 (accepting 1.10) replaying `bytes` from the daemon.
async fn worker_client(bytes: &[u8]) -> Result<ProtocolVersion, ProtocolError> {
    let cfg = WorkerConfig {
        version: ProtocolVersion::new(1, 10),
        min_version: ProtocolVersion::new(1, 10),
        ..WorkerConfig::default()
    };
    let mut stream = join(bytes, sink());
    client_negotiate(&mut stream, &cfg).await.map(|n| n.version)
}

async fn serve_client(bytes: &[u8]) -> Result<ProtocolVersion, ProtocolError> {
    let mut stream = join(bytes, sink());
    serve_client_handshake(&mut stream, ProtocolVersion::new(2, 0)).await
}

/// Corrupts byte `i` as upstream does: `b` becomes `4b + 1` (mod 256).
fn corrupt(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[i] = out[i].wrapping_mul(4).wrapping_add(1);
    out
}

#[tokio::test]
async fn worker_handshake_replay() {
    let bytes = file("worker-protocol");
    assert_eq!(bytes.len(), 16);
    assert_eq!(worker_client(&bytes).await.unwrap(), ProtocolVersion::new(1, 10));
    for len in 0..bytes.len() {
        assert!(matches!(worker_client(&bytes[..len]).await, Err(ProtocolError::UnexpectedEof)), "prefix {len}");
    }
    for i in 0..bytes.len() {
        let r = worker_client(&corrupt(&bytes, i)).await;
        match i {
            // The magic (its value, or its upper half that must be zero).
            0..=7 => assert!(matches!(r, Err(ProtocolError::BadMagic { .. })), "byte {i}: {r:?}"),
            9 => assert!(matches!(r, Err(ProtocolError::UnsupportedVersion { .. })), "byte {i}: {r:?}"),
            12..=15 => assert!(matches!(r, Err(ProtocolError::IntegerTooLarge { .. })), "byte {i}: {r:?}"),
            _ => assert_eq!(r.unwrap(), ProtocolVersion::new(1, 10), "byte {i}"),
        }
    }
}

#[tokio::test]
async fn worker_server_writes_the_file() {
    let mut hello = WORKER_MAGIC_1.to_le_bytes().to_vec();
    hello.extend_from_slice(&0x010au64.to_le_bytes());
    let mut out = Vec::new();
    let cfg = WorkerConfig {
        version: ProtocolVersion::new(1, 10),
        min_version: ProtocolVersion::new(1, 10),
        ..WorkerConfig::default()
    };
    let n = server_negotiate(&mut join(&hello[..], &mut out), &cfg).await.unwrap();
    assert_eq!(n.version, ProtocolVersion::new(1, 10));
    assert_eq!(out, file("worker-protocol"));
}

#[tokio::test]
async fn serve_handshake_replay() {
    let bytes = file("serve-protocol");
    assert_eq!(bytes.len(), 16);
    assert_eq!(serve_client(&bytes).await.unwrap(), ProtocolVersion::new(2, 0));
    for len in 0..bytes.len() {
        assert!(matches!(serve_client(&bytes[..len]).await, Err(ProtocolError::UnexpectedEof)), "prefix {len}");
    }
    for i in 0..bytes.len() {
        let r = serve_client(&corrupt(&bytes, i)).await;
        match i {
            0..=7 => assert!(matches!(r, Err(ProtocolError::BadMagic { .. })), "byte {i}: {r:?}"),
            9 => assert!(matches!(r, Err(ProtocolError::UnsupportedVersion { .. })), "byte {i}: {r:?}"),
            12..=15 => assert!(matches!(r, Err(ProtocolError::IntegerTooLarge { .. })), "byte {i}: {r:?}"),
            _ => assert_eq!(r.unwrap(), ProtocolVersion::new(2, 0), "byte {i}"),
        }
    }
}

#[tokio::test]
async fn serve_server_writes_the_file() {
    let mut hello = SERVE_MAGIC_1.to_le_bytes().to_vec();
    hello.extend_from_slice(&0x0200u64.to_le_bytes());
    let mut out = Vec::new();
    let v = serve_server_handshake(&mut join(&hello[..], &mut out), ProtocolVersion::new(2, 0)).await.unwrap();
    assert_eq!(v, ProtocolVersion::new(2, 0));
    assert_eq!(out, file("serve-protocol"));
}
