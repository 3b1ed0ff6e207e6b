//! 64 clients for 60 s of mixed adds and queries: every operation succeeds, and the daemon's
//! file descriptors and memory do not grow over the run.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{nar_path, Daemon};
use nix_formats::store_path::StorePath;

const CLIENTS: usize = 64;
const RUN: Duration = Duration::from_secs(60);
const EARLY_SAMPLE: Duration = Duration::from_secs(10);
/// Operations on one connection before a client reconnects (connections come and go too).
const OPS_PER_CONNECTION: u64 = 200;

/// One protocol client's loop: adds (`AddTextToStore`, `AddToStoreNar`) and queries
/// (`QueryPathInfo`, `IsValidPath`, `QueryReferences`) until `end`.
async fn protocol_client(daemon: Arc<Daemon>, id: usize, end: Instant, done: Arc<AtomicU64>) {
    let store_dir = daemon.store_dir();
    let mut added: Vec<StorePath> = Vec::new();
    let mut n: u64 = 0;
    while Instant::now() < end {
        let mut conn = daemon.connect().await;
        for _ in 0..OPS_PER_CONNECTION {
            if Instant::now() >= end {
                break;
            }
            let what = format!("client {id} op {n}");
            match n % 8 {
                0 => {
                    let refs: BTreeSet<StorePath> = added.last().into_iter().cloned().collect();
                    let path = conn.add_text_to_store(&format!("text-{id}-{n}"), what.as_bytes(), &refs).await;
                    added.push(path.unwrap_or_else(|e| panic!("{what}: AddTextToStore: {e}")));
                }
                1 => {
                    let contents = what.repeat(200);
                    let (info, nar) = nar_path(&store_dir, &format!("nar-{id}-{n}"), contents.as_bytes());
                    conn.add_to_store_nar(&info, &mut &nar[..], false, true)
                        .await
                        .unwrap_or_else(|e| panic!("{what}: AddToStoreNar: {e}"));
                    added.push(info.path);
                }
                2 | 3 => {
                    let path = &added[(n as usize * 7) % added.len()];
                    let info = conn.query_path_info(path).await.unwrap_or_else(|e| panic!("{what}: QueryPathInfo: {e}"));
                    assert_eq!(info.map(|i| i.path), Some(path.clone()), "{what}");
                }
                4 | 5 => {
                    let path = &added[(n as usize * 3) % added.len()];
                    let valid = conn.is_valid_path(path).await.unwrap_or_else(|e| panic!("{what}: IsValidPath: {e}"));
                    assert!(valid, "{what}: {path} should be valid");
                }
                _ => {
                    let path = &added[(n as usize * 5) % added.len()];
                    conn.query_references(path).await.unwrap_or_else(|e| panic!("{what}: QueryReferences: {e}"));
                }
            }
            n += 1;
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A real Nix client's loop: `nix-store --add` and `nix-store -q --references`.
fn nix_client(daemon: Arc<Daemon>, end: Instant, done: Arc<AtomicU64>) {
    let mut n = 0;
    while Instant::now() < end {
        let file = daemon.file(&format!("nix-client-{n}"), format!("added by nix-store {n}").as_bytes());
        let path = common::ok(daemon.nix("nix-store").arg("--add").arg(&file));
        common::ok(daemon.nix("nix-store").args(["-q", "--references", &path]));
        n += 1;
        done.fetch_add(2, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_for_a_minute() {
    let daemon = Arc::new(Daemon::start(""));
    let baseline_fds = daemon.fd_count();
    let start = Instant::now();
    let end = start + RUN;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for id in 0..CLIENTS - 1 {
        tasks.push(tokio::spawn(protocol_client(Arc::clone(&daemon), id, end, Arc::clone(&done))));
    }
    let nix = {
        let (daemon, done) = (Arc::clone(&daemon), Arc::clone(&done));
        tokio::task::spawn_blocking(move || nix_client(daemon, end, done))
    };

    tokio::time::sleep(EARLY_SAMPLE).await;
    let (early_fds, early_rss) = (daemon.fd_count(), daemon.rss_kib());
    let early_ops = done.load(Ordering::Relaxed);

    for task in tasks {
        task.await.unwrap();
    }
    nix.await.unwrap();
    let total_ops = done.load(Ordering::Relaxed);
    eprintln!(
        "load: {total_ops} operations in {:.0} s; at 10 s ({early_ops} ops): {early_fds} fds, {early_rss} KiB",
        start.elapsed().as_secs_f64()
    );
    assert!(total_ops > early_ops, "no progress after the first 10 s");

    // With every client gone, the daemon holds no more descriptors than it did with 64
    // connected, nor more than its idle baseline plus a little once the sessions have ended.
    eprintln!("load: clients done at {:.0} s", start.elapsed().as_secs_f64());
    let settled = common::eventually(Duration::from_secs(30), || daemon.fd_count() <= baseline_fds + 8);
    let (end_fds, end_rss) = (daemon.fd_count(), daemon.rss_kib());
    eprintln!("load: at the end: {end_fds} fds (baseline {baseline_fds}), {end_rss} KiB");
    assert!(settled, "file descriptors leaked: {end_fds} at the end, {baseline_fds} at the start");
    assert!(end_fds <= early_fds, "file descriptors grew: {early_fds} at 10 s, {end_fds} at the end");
    assert!(
        end_rss <= early_rss * 2 + 64 * 1024,
        "memory grew: {early_rss} KiB at 10 s, {end_rss} KiB at the end"
    );

    // Everything added is still there and valid for Nix.
    let mut conn = daemon.connect().await;
    let all = conn.query_all_valid_paths().await.unwrap();
    eprintln!("load: {} valid paths; checking them at {:.0} s", all.len(), start.elapsed().as_secs_f64());
    assert!(all.len() as u64 >= total_ops / 8, "{} paths for {total_ops} operations", all.len());
    common::ok(daemon.nix("nix-store").args(["--verify"]));
    eprintln!("load: verified at {:.0} s", start.elapsed().as_secs_f64());
}
