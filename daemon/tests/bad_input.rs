//! Misbehaving clients: garbage, a client that stops half-way through a request, and clients
//! that never read their replies are dropped (the latter two after `casnix-io-timeout`), while
//! other clients are served as usual.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{encode, log_shows, log_shows_times, raw_session, read_until_closed, Daemon};
use tokio::io::AsyncWriteExt;
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod, NarFromPath};
use worker_protocol::ops::request::query::{IsValidPath, QueryAllValidPaths};
use worker_protocol::ops::Request;

/// The timeout the daemons here run with.
const TIMEOUT_CONF: &str = "casnix-io-timeout = 2\n";
/// How long a test waits for something that should happen within seconds.
const GENEROUS: Duration = Duration::from_secs(60);

/// Checks that `daemon` still serves a client normally: a text add, then queries.
async fn still_serves(daemon: &Daemon, name: &str) {
    let mut conn = daemon.connect().await;
    let path = conn.add_text_to_store(name, name.as_bytes(), &BTreeSet::new()).await.unwrap();
    assert!(conn.is_valid_path(&path).await.unwrap());
    assert!(conn.query_path_info(&path).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_the_connection_dropped() {
    let daemon = Daemon::start(TIMEOUT_CONF);
    let mut bystander = daemon.connect().await;

    // Garbage instead of the handshake.
    let mut stream = tokio::net::UnixStream::connect(daemon.socket()).await.unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let _ = stream.write_all(&garbage).await;
    read_until_closed(&mut stream, GENEROUS).await;

    // Garbage after a proper handshake: an unknown opcode, then noise.
    let (mut stream, _) = raw_session(&daemon).await;
    let _ = stream.write_all(&0xdead_beef_u64.to_le_bytes()).await;
    let _ = stream.write_all(&garbage).await;
    read_until_closed(&mut stream, GENEROUS).await;

    // A known opcode whose fields are garbage (a string longer than any limit).
    let (mut stream, _) = raw_session(&daemon).await;
    let _ = stream.write_all(&1u64.to_le_bytes()).await;
    let _ = stream.write_all(&u64::MAX.to_le_bytes()).await;
    read_until_closed(&mut stream, GENEROUS).await;

    assert!(bystander.query_all_valid_paths().await.unwrap().is_empty());
    still_serves(&daemon, "after-garbage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stopping_mid_request_is_dropped_after_the_timeout_but_idle_ones_are_not() {
    let daemon = Daemon::start(TIMEOUT_CONF);
    let mut idle = daemon.connect().await;
    // A request answered, then nothing: the connection is idle, not stalled.
    assert!(idle.query_all_valid_paths().await.unwrap().is_empty());

    // Half a request: the opcode and the length of a path, then nothing.
    let (mut stream, ctx) = raw_session(&daemon).await;
    let path = daemon.store_dir().parse(&format!("{}/{}-half", daemon.store(), "1".repeat(32))).unwrap();
    let request = encode(&Request::IsValidPath(IsValidPath { path }), &ctx);
    stream.write_all(&request[..20]).await.unwrap();
    read_until_closed(&mut stream, GENEROUS).await;
    assert!(log_shows(&daemon, "sent nothing for 2 s", GENEROUS).await, "{}", daemon.daemon_log());

    // Half a framed payload: AddToStore whose data stops in the middle of a frame.
    let mut conn = daemon.connect().await;
    let (mut feeder, mut source) = tokio::io::duplex(1 << 16);
    let upload = tokio::spawn(async move {
        let method = CaMethodAlgo { method: IngestionMethod::Flat, algo: nix_formats::hash::Algorithm::Sha256 };
        conn.add_to_store("stalled", method, &BTreeSet::new(), false, &mut source).await
    });
    feeder.write_all(&[1u8; 100_000]).await.unwrap();
    assert!(log_shows_times(&daemon, "sent nothing for 2 s", 2, GENEROUS).await, "{}", daemon.daemon_log());
    // The client learns of it once it is done sending (which needs the rest of its data).
    drop(feeder);
    let result = tokio::time::timeout(GENEROUS, upload).await.unwrap().unwrap();
    assert!(result.is_err(), "a stalled upload should fail: {result:?}\n{}", daemon.daemon_log());

    // The idle connection has waited longer than the timeout, and is still served.
    assert!(idle.query_all_valid_paths().await.unwrap().is_empty());
    still_serves(&daemon, "after-stall").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_a_large_nar_is_dropped() {
    let daemon = Daemon::start(TIMEOUT_CONF);
    let big = daemon.file("big", &vec![3u8; 32 << 20]);
    let path = common::ok(daemon.nix("nix-store").arg("--add").arg(&big));
    let path = daemon.store_dir().parse(&path).unwrap();

    let (mut stream, ctx) = raw_session(&daemon).await;
    stream.write_all(&encode(&Request::NarFromPath(NarFromPath { path: path.clone() }), &ctx)).await.unwrap();
    // Others are served while the daemon waits on this client.
    still_serves(&daemon, "while-blocked").await;
    assert!(log_shows(&daemon, "read nothing for 2 s", GENEROUS).await, "{}", daemon.daemon_log());
    let received = read_until_closed(&mut stream, GENEROUS).await;
    assert!(received < 32 << 20, "the whole NAR arrived ({received} bytes)");

    // The NAR is still served to a client that reads it.
    let mut conn = daemon.connect().await;
    let mut nar = Vec::new();
    let size = conn.nar_from_path(&path, &mut nar).await.unwrap();
    assert_eq!(size, nar.len() as u64);
    assert!(nar.len() > 32 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_many_replies_is_dropped() {
    let daemon = Daemon::start(TIMEOUT_CONF);
    let mut conn = daemon.connect().await;
    for i in 0..200 {
        conn.add_text_to_store(&format!("filler-{i}"), format!("{i}").as_bytes(), &BTreeSet::new()).await.unwrap();
    }
    drop(conn);

    // 200 paths make a reply of about 20 KB: 2,000 of them fill any socket buffer.
    let (mut stream, ctx) = raw_session(&daemon).await;
    let request = encode(&Request::QueryAllValidPaths(QueryAllValidPaths {}), &ctx);
    let many: Vec<u8> = request.iter().copied().cycle().take(request.len() * 2000).collect();
    // The daemon stops reading once its replies back up, so this write may not finish.
    let writer = tokio::spawn(async move {
        let _ = stream.write_all(&many).await;
        stream
    });
    still_serves(&daemon, "while-flooded").await;
    assert!(log_shows(&daemon, "read nothing for 2 s", GENEROUS).await, "{}", daemon.daemon_log());
    let mut stream = tokio::time::timeout(GENEROUS, writer).await.unwrap().unwrap();
    let received = read_until_closed(&mut stream, GENEROUS).await;
    assert!(received > 0);
    still_serves(&daemon, "after-flood").await;
}
