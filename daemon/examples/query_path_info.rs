//! A tiny benchmark client: `query_path_info SOCKET STORE_PATH COUNT` connects to a daemon
//! (any Nix daemon) and asks `QueryPathInfo` of one path COUNT times in a row, one round trip
//! each, then prints the rate. The store directory is `NIX_STORE_DIR` (default `/nix/store`).
//! Used by `bench/daemon.sh`.

use std::time::Instant;

use anyhow::{bail, Context};
use nix_formats::store_path::StoreDir;
use worker_protocol::connection::{ClientConfig, ClientConnection};

async fn run(socket: &str, path: &str, count: u64) -> anyhow::Result<()> {
    let store_dir = StoreDir::from_env();
    let path = store_dir.parse(path).with_context(|| format!("parsing '{path}'"))?;
    let config = ClientConfig { store_dir, ..ClientConfig::default() };
    let mut conn = ClientConnection::connect_unix(socket, &config).await.with_context(|| format!("connecting to '{socket}'"))?;
    // Warm up: the first calls open files and fill caches.
    for _ in 0..count.min(500) {
        conn.query_path_info(&path).await?;
    }
    let start = Instant::now();
    for _ in 0..count {
        if conn.query_path_info(&path).await?.is_none() {
            bail!("'{}' is not valid", config.store_dir.print(&path));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{:.0} QueryPathInfo/s ({count} in {seconds:.2} s)", count as f64 / seconds);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, path, count] = &args[..] else { bail!("usage: query_path_info SOCKET STORE_PATH COUNT") };
    let count: u64 = count.parse().context("COUNT should be a number")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(socket, path, count))
}
