//! A recording proxy: clients connect to it, it connects each to the real daemon and copies the
//! bytes both ways, keeping a copy of each direction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// One recorded connection: what the client sent, what the daemon sent.
pub type Recording = (Vec<u8>, Vec<u8>);

/// A running proxy.
pub struct Recorder {
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<std::io::Result<Recording>>>>>,
}

async fn copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> std::io::Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            // The peer may be gone already; its half is closed either way.
            let _ = to.shutdown().await;
            return Ok(seen);
        }
        seen.extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            return Ok(seen);
        }
    }
}

async fn connect(target: &Path) -> std::io::Result<UnixStream> {
    let mut last = None;
    for _ in 0..200 {
        match UnixStream::connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()))
}

impl Recorder {
    /// Listens on `listen` and relays each connection to the daemon socket `target`.
    pub fn start(listen: &Path, target: PathBuf) -> Self {
        let listener = UnixListener::bind(listen).unwrap();
        let connections: Arc<Mutex<Vec<JoinHandle<std::io::Result<Recording>>>>> = Arc::default();
        let conns = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                conns.lock().unwrap().push(tokio::spawn(async move {
                    let daemon = connect(&target).await?;
                    let (cr, cw) = client.into_split();
                    let (dr, dw) = daemon.into_split();
                    let up = tokio::spawn(copy(cr, dw));
                    let down = tokio::spawn(copy(dr, cw));
                    let to_daemon = up.await.map_err(std::io::Error::other)??;
                    let to_client = down.await.map_err(std::io::Error::other)??;
                    Ok((to_daemon, to_client))
                }));
            }
        });
        Self { accept, connections }
    }

    /// Stops accepting and waits for every connection to close; returns them in accept order.
    pub async fn finish(self) -> Vec<Recording> {
        self.accept.abort();
        let handles = std::mem::take(&mut *self.connections.lock().unwrap());
        let mut out = Vec::new();
        for h in handles {
            let rec = tokio::time::timeout(Duration::from_secs(30), h).await.expect("the connection closes");
            out.push(rec.expect("the relay task").expect("relaying"));
        }
        out
    }
}
