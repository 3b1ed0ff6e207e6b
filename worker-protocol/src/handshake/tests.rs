//! Both handshake sides against each other, at several versions and orderings.

use std::collections::BTreeSet;

use tokio::io::{duplex, AsyncWriteExt, DuplexStream};

use super::*;
use crate::error::ProtocolError;
use crate::stderr::{STDERR_ERROR, STDERR_LAST};
use crate::types::TrustedFlag;
use crate::version::{ProtocolVersion, WORKER_MAGIC_1, WORKER_MAGIC_2};
use crate::wire::io::{read_string, read_u64, write_bytes, write_u64};

fn v(minor: u8) -> ProtocolVersion {
    ProtocolVersion::new(1, minor)
}

fn cfg(minor: u8, features: &[&str]) -> WorkerConfig {
    WorkerConfig {
        version: v(minor),
        features: features.iter().map(|s| s.to_string()).collect(),
        ..WorkerConfig::default()
    }
}

fn daemon_info() -> ClientHandshakeInfo {
    ClientHandshakeInfo { daemon_nix_version: Some("2.26.3".into()), remote_trusts_us: Some(TrustedFlag::Trusted) }
}

async fn pair(
    client_cfg: WorkerConfig,
    server_cfg: WorkerConfig,
    messages: Vec<String>,
) -> (Result<ClientHandshake, ProtocolError>, Result<ServerHandshake, ProtocolError>) {
    let (mut c, mut s): (DuplexStream, DuplexStream) = duplex(64);
    let client = async move { client_handshake(&mut c, &client_cfg).await };
    let server = async move {
        let r = server_handshake(&mut s, &server_cfg, &daemon_info(), &messages).await;
        // Drop the stream on failure so that the client sees the end instead of waiting.
        drop(s);
        r
    };
    tokio::join!(client, server)
}

#[tokio::test]
async fn both_sides_agree_at_many_versions() {
    for (client, server, agreed) in [(38, 38, 38), (38, 34, 34), (34, 38, 34), (35, 37, 35), (33, 38, 33), (21, 38, 21), (38, 21, 21)] {
        let (c, s) = pair(cfg(client, &["a", "b"]), cfg(server, &["b", "c"]), vec![]).await;
        let (c, s) = (c.unwrap(), s.unwrap());
        assert_eq!(c.negotiated.version, v(agreed));
        assert_eq!(s.negotiated, c.negotiated);
        let expect_features: BTreeSet<String> = if agreed >= 38 { ["b".to_owned()].into() } else { BTreeSet::new() };
        assert_eq!(c.negotiated.features, expect_features);
        assert_eq!(c.info.daemon_nix_version.is_some(), agreed >= 33, "{agreed}");
        assert_eq!(c.info.remote_trusts_us, (agreed >= 35).then_some(TrustedFlag::Trusted));
        assert_eq!(s.client, ClientSettings { cpu_affinity: None, reserve_space: false });
    }
}

#[tokio::test]
async fn startup_messages_reach_the_client() {
    let (c, _) = pair(cfg(38, &[]), cfg(38, &[]), vec!["warning: one".into(), "two".into()]).await;
    assert_eq!(c.unwrap().startup_messages, ["warning: one", "two"]);
}

#[tokio::test]
async fn too_old_versions_are_refused_on_both_sides() {
    let (c, s) = pair(cfg(20, &[]), cfg(38, &[]), vec![]).await;
    assert!(matches!(s, Err(ProtocolError::UnsupportedVersion { .. })), "{s:?}");
    assert!(c.is_err());
    // Lowering the floor lets 1.20 through, but never below 1.10.
    let low = WorkerConfig { min_version: v(5), ..cfg(38, &[]) };
    assert_eq!(low.effective_min_version(), v(10));
    let (c, s) = pair(WorkerConfig { min_version: v(5), ..cfg(20, &[]) }, low.clone(), vec![]).await;
    assert_eq!(c.unwrap().negotiated.version, v(20));
    assert!(s.is_ok());
    let (c, s) = pair(WorkerConfig { min_version: v(5), ..cfg(9, &[]) }, low, vec![]).await;
    assert!(matches!(s, Err(ProtocolError::UnsupportedVersion { .. })));
    assert!(c.is_err());
}

/// A client in the style of Nix before 2.24: it sends the magic alone and waits for the server's
/// answer before sending its version. The server must answer without waiting for more.
#[tokio::test]
async fn server_answers_a_client_that_waits() {
    let (mut c, mut s) = duplex(64);
    let server = tokio::spawn(async move {
        server_handshake(&mut s, &WorkerConfig::default(), &daemon_info(), &[]).await
    });
    write_u64(&mut c, WORKER_MAGIC_1).await.unwrap();
    c.flush().await.unwrap();
    assert_eq!(read_u64(&mut c).await.unwrap(), WORKER_MAGIC_2);
    assert_eq!(read_u64(&mut c).await.unwrap(), 0x126);
    write_u64(&mut c, 0x122).await.unwrap(); // 1.34
    write_u64(&mut c, 1).await.unwrap(); // CPU affinity given ...
    write_u64(&mut c, 3).await.unwrap(); // ... CPU 3
    write_u64(&mut c, 1).await.unwrap(); // reserve space
    assert_eq!(read_string(&mut c, 100).await.unwrap(), "2.26.3");
    assert_eq!(read_u64(&mut c).await.unwrap(), STDERR_LAST);
    let s = server.await.unwrap().unwrap();
    assert_eq!(s.negotiated.version, v(34));
    assert_eq!(s.client, ClientSettings { cpu_affinity: Some(3), reserve_space: true });
}

#[tokio::test]
async fn wrong_magic_and_major_are_refused() {
    let (mut c, mut s) = duplex(64);
    write_u64(&mut c, 0x1234).await.unwrap();
    let r = server_negotiate(&mut s, &WorkerConfig::default()).await;
    assert!(matches!(r, Err(ProtocolError::BadMagic { expected: WORKER_MAGIC_1, got: 0x1234 })));

    let (mut c, mut s) = duplex(64);
    write_u64(&mut c, WORKER_MAGIC_1).await.unwrap();
    write_u64(&mut c, 0x0226).await.unwrap();
    let r = server_negotiate(&mut s, &WorkerConfig::default()).await;
    assert!(matches!(r, Err(ProtocolError::UnsupportedVersion { .. })), "{r:?}");

    let (mut c, mut s) = duplex(64);
    write_u64(&mut s, WORKER_MAGIC_2).await.unwrap();
    write_u64(&mut s, 0x0226).await.unwrap();
    let r = client_negotiate(&mut c, &WorkerConfig::default()).await;
    assert!(matches!(r, Err(ProtocolError::UnsupportedVersion { .. })), "{r:?}");
}

/// A daemon that reports an error instead of finishing the handshake.
#[tokio::test]
async fn daemon_errors_become_remote_errors() {
    for minor in [25u8, 38] {
        let (mut c, mut s) = duplex(1024);
        let server = async move {
            let n = server_negotiate(&mut s, &cfg(minor, &[])).await.unwrap();
            server_post_handshake(&mut s, &n, &daemon_info(), &cfg(minor, &[])).await.unwrap();
            write_u64(&mut s, STDERR_ERROR).await.unwrap();
            if minor >= 26 {
                write_bytes(&mut s, b"Error").await.unwrap();
                write_u64(&mut s, 0).await.unwrap();
                write_bytes(&mut s, b"").await.unwrap();
                write_bytes(&mut s, b"you are not allowed").await.unwrap();
                write_u64(&mut s, 0).await.unwrap();
                write_u64(&mut s, 1).await.unwrap();
                write_u64(&mut s, 0).await.unwrap();
                write_bytes(&mut s, b"while connecting").await.unwrap();
            } else {
                write_bytes(&mut s, b"you are not allowed").await.unwrap();
                write_u64(&mut s, 7).await.unwrap();
            }
            s.flush().await.unwrap();
            s
        };
        let client = async { client_handshake(&mut c, &cfg(38, &[])).await };
        let (r, _s) = tokio::join!(client, server);
        match r {
            Err(ProtocolError::Remote { message, status }) => {
                assert!(message.starts_with("you are not allowed"), "{message}");
                assert_eq!(status, if minor >= 26 { 1 } else { 7 });
                assert_eq!(message.contains("while connecting"), minor >= 26);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn serve_handshake_both_sides() {
    for (client, server) in [(7u8, 7u8), (7, 4), (2, 7)] {
        let (mut c, mut s) = duplex(64);
        let (a, b) = tokio::join!(
            serve_client_handshake(&mut c, ProtocolVersion::new(2, client)),
            serve_server_handshake(&mut s, ProtocolVersion::new(2, server))
        );
        assert_eq!(a.unwrap(), ProtocolVersion::new(2, client.min(server)));
        assert_eq!(b.unwrap(), ProtocolVersion::new(2, client.min(server)));
    }
    // A client of the wrong major version is refused by the server, and vice versa.
    let (mut c, mut s) = duplex(64);
    let (_, b) = tokio::join!(
        serve_client_handshake(&mut c, ProtocolVersion::new(1, 38)),
        serve_server_handshake(&mut s, ProtocolVersion::new(2, 7))
    );
    assert!(matches!(b, Err(ProtocolError::UnsupportedVersion { .. })));
    let (mut c, mut s) = duplex(64);
    let (a, _) = tokio::join!(
        serve_client_handshake(&mut c, ProtocolVersion::new(2, 7)),
        serve_server_handshake(&mut s, ProtocolVersion::new(3, 0))
    );
    assert!(matches!(a, Err(ProtocolError::UnsupportedVersion { .. })));
}
