//! `ServerConnection`'s own rules: refused operations, the end of a connection, replies out of
//! turn, payloads skipped when unread, logging while reading a payload, and the verbosity a
//! client asks for.

mod duplex;

use duplex::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worker_protocol::connection::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use worker_protocol::handshake::{client_handshake, WorkerConfig};
use worker_protocol::logger::{read_message, LogCollector, LogMessage, Verbosity};
use worker_protocol::ops::request::add::*;
use worker_protocol::ops::request::query::IsValidPath;
use worker_protocol::ops::set_options::Verbosity as OptionsVerbosity;
use worker_protocol::ops::{ClientOptions, Request, Response};
use worker_protocol::{ProtocolError, ProtocolVersion, WireCtx};

/// Sends the raw operation number `code` after a handshake and returns the server's verdict and
/// the error message the client got.
async fn refused(code: u64) -> (ProtocolError, String) {
    let (mut client_end, server_end) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let mut conn = ServerConnection::accept(server_end, &ServerConfig::default()).await.unwrap();
        let err = conn.next_request().await.unwrap_err();
        let again = conn.next_request().await.unwrap_err();
        assert!(matches!(again, ProtocolError::ConnectionBroken), "{again}");
        err
    });
    let hs = client_handshake(&mut client_end, &WorkerConfig::default()).await.unwrap();
    client_end.write_all(&code.to_le_bytes()).await.unwrap();
    let ctx = WireCtx::worker(hs.negotiated.version);
    let LogMessage::Error(e) = read_message(&mut client_end, &ctx).await.unwrap() else { panic!("no error") };
    (server.await.unwrap(), e.message)
}

#[tokio::test]
async fn unknown_and_removed_operations_are_refused_as_nix_does() {
    let (err, message) = refused(99).await;
    assert!(matches!(err, ProtocolError::UnknownOpcode(99)), "{err}");
    assert_eq!(message, "invalid operation 99");
    let (err, message) = refused(24).await;
    assert!(matches!(err, ProtocolError::RemovedOperation(24)), "{err}");
    assert_eq!(message, "Removed operation 24");
}

#[tokio::test]
async fn end_of_connection_and_replies_out_of_turn() {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let mut conn = ServerConnection::accept(server_end, &ServerConfig::default()).await.unwrap();
        let early = conn.respond(&Response::IsValidPath(true)).await.unwrap_err();
        assert!(matches!(early, ProtocolError::OutOfTurn(_)), "{early}");
        let request = conn.next_request().await.unwrap().unwrap();
        assert!(matches!(request, Request::IsValidPath(_)));
        assert_eq!(conn.current_operation(), Some(worker_protocol::ops::Opcode::IsValidPath));
        let wrong = conn.respond(&Response::QueryAllValidPaths(Default::default())).await.unwrap_err();
        assert!(matches!(wrong, ProtocolError::ResponseMismatch { .. }), "{wrong}");
        let twice = conn.next_request().await.unwrap_err();
        assert!(matches!(twice, ProtocolError::OutOfTurn(_)), "{twice}");
        assert!(conn.nar_reply().await.is_err() && conn.export_writer().is_err());
        conn.respond(&Response::IsValidPath(true)).await.unwrap();
        // The client hangs up between requests.
        assert!(conn.next_request().await.unwrap().is_none());
    });
    let mut client = ClientConnection::from_stream(client_end, &ClientConfig::default()).await.unwrap();
    assert!(client.is_valid_path(&sp("a")).await.unwrap());
    drop(client);
    server.await.unwrap();
}

/// An inline NAR (legacy `AddToStore`) and a framed stream that the server does not read are
/// skipped before its error goes out, so the next request is read in step.
#[tokio::test]
async fn unread_payloads_are_skipped() {
    let nar = nar_of(&vec![4u8; 100_000]);
    let legacy = AddToStore::Legacy(AddToStoreLegacy { name: "n".into(), fixed: false, recursive: true, algo: nix_formats::hash::Algorithm::Sha256 });
    let framed = AddBuildLog { drv_path: sp("x.drv") };
    let nar_method = CaMethodAlgo { method: IngestionMethod::Nar, algo: nix_formats::hash::Algorithm::Sha256 };
    for (minor, request) in [(24, Request::AddToStore(legacy)), (38, Request::AddBuildLog(framed))] {
        let table = vec![
            (request.clone(), Answer::ErrorUnread("refused".into())),
            answer(IsValidPath { path: sp("a") }, Response::IsValidPath(true)),
        ];
        let (mut c, server) = start(ProtocolVersion::new(1, minor), table).await;
        let err = match request {
            Request::AddToStore(_) => c.add_to_store("n", nar_method, &Default::default(), false, &mut &nar[..]).await.unwrap_err(),
            _ => c.add_build_log(&sp("x.drv"), &mut &nar[..]).await.unwrap_err(),
        };
        assert!(matches!(&err, ProtocolError::Remote { message, .. } if message == "refused"), "1.{minor}: {err}");
        assert!(c.is_valid_path(&sp("a")).await.unwrap(), "1.{minor}");
        finish(c, server).await;
    }
}

/// A framed payload can be read while logging; a pulled one cannot (it needs the logger's
/// writer), and says so.
#[tokio::test]
async fn payload_with_logger() {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let cfg = ServerConfig {
        worker: WorkerConfig { min_version: ProtocolVersion::new(1, 21), ..WorkerConfig::default() },
        ..ServerConfig::default()
    };
    let server = tokio::spawn(async move {
        let mut conn = ServerConnection::accept(server_end, &cfg).await.unwrap();
        while let Some(request) = conn.next_request().await.unwrap() {
            match request {
                Request::AddBuildLog(_) => {
                    let (mut payload, logger) = conn.payload_with_logger().unwrap();
                    let mut buf = [0u8; 1000];
                    let mut total = 0;
                    loop {
                        let n = payload.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        total += n;
                        logger.log(Verbosity::Info, format!("got {total}")).await.unwrap();
                    }
                    conn.respond(&Response::AddBuildLog).await.unwrap();
                }
                Request::ImportPaths(_) => {
                    assert!(matches!(conn.payload_with_logger(), Err(ProtocolError::OutOfTurn(_))));
                    let mut data = Vec::new();
                    conn.payload().unwrap().read_to_end(&mut data).await.unwrap();
                    conn.respond(&Response::ImportPaths(vec![])).await.unwrap();
                }
                Request::SetOptions(_) => {
                    // The client asked for errors only: this line is dropped.
                    conn.logger().log(Verbosity::Info, "dropped").await.unwrap();
                    conn.logger().log(Verbosity::Error, "kept").await.unwrap();
                    conn.respond(&Response::SetOptions).await.unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
    });
    let client_cfg = ClientConfig {
        worker: WorkerConfig { version: ProtocolVersion::new(1, 38), ..WorkerConfig::default() },
        ..ClientConfig::default()
    };
    let client = ClientConnection::from_stream(client_end, &client_cfg).await.unwrap();
    let mut client = client.with_sink(LogCollector::new(1 << 20));
    client.add_build_log(&sp("x.drv"), &mut &[7u8; 2500][..]).await.unwrap();
    assert_eq!(client.sink().lines().last().map(String::as_str), Some("got 2500"));
    assert!(client.import_paths(&mut &b"data"[..]).await.unwrap().is_empty());
    client.sink_mut().messages.clear();
    let quiet = ClientOptions { verbosity: OptionsVerbosity::Error, ..ClientOptions::default() };
    client.set_options(&quiet).await.unwrap();
    assert_eq!(client.sink().lines(), ["kept"]);
    drop(client);
    server.await.unwrap();
}
