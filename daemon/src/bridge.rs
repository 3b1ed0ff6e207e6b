//! Running store work (SQLite, file system) for a connection. [`run`] calls the store right
//! there: each connection has a thread of its own. Work that streams from or to the client
//! runs on tokio's blocking pool while the connection's async reader or writer feeds it.
//!
//! The store is synchronous (`std::io::Read`/`Write`); the connection is async and borrowed
//! for the length of a request, so it cannot move into a blocking task. These bridges pass
//! bytes over channels instead:
//! - [`with_input`]: the blocking side reads a [`DemandReader`]; each `read` asks the async
//!   side for at most that many bytes, which it reads from the payload only then. Nothing is
//!   read ahead, which matters for payloads pulled with `STDERR_READ`: Nix's client fails when
//!   asked for data after its stream has ended.
//! - [`with_output`]: the blocking side writes a [`ChannelWriter`]; the async side sends what
//!   arrives to the client as it comes.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use store::Store;
use worker_protocol::logger::{LogMessage, ServerLogger, Verbosity};

/// The most bytes passed in one message.
const MAX_CHUNK: usize = 256 << 10;
/// Messages in flight from a writer before it waits.
const OUTPUT_DEPTH: usize = 8;

/// Why a bridged call failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError<E> {
    /// The blocking work failed.
    #[error(transparent)]
    Work(E),
    /// The blocking work panicked or was cancelled.
    #[error("internal error: {0}")]
    Join(String),
    /// Moving bytes to or from the client failed.
    #[error("{0}")]
    Io(io::Error),
}

/// Runs `work` with the store, here: each connection has a thread of its own (see
/// `listen`), so blocking it for the length of a store call holds up nothing else, and a
/// query costs no hand-over between threads.
pub async fn run<T, E, F>(store: &Arc<Store>, work: F) -> Result<T, BridgeError<E>>
where
    F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    work(store).map_err(BridgeError::Work)
}

/// A `Read` whose bytes come, on demand, from an async reader on the other side.
#[derive(Debug)]
pub struct DemandReader {
    demand: mpsc::Sender<usize>,
    supply: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    at_end: bool,
}

impl Read for DemandReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.is_empty() {
            if self.at_end {
                return Ok(0);
            }
            let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the connection went away");
            self.demand.blocking_send(buf.len().min(MAX_CHUNK)).map_err(|_| gone())?;
            match self.supply.blocking_recv() {
                Some(Ok(bytes)) if bytes.is_empty() => {
                    self.at_end = true;
                    return Ok(0);
                }
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Err(gone()),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Runs `work` on the blocking pool with a reader of `input`, serving its reads meanwhile.
/// Whatever `work` leaves unread stays in `input`.
pub async fn with_input<T, E, F, R>(store: &Arc<Store>, input: &mut R, work: F) -> Result<T, BridgeError<E>>
where
    F: FnOnce(&Store, DemandReader) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: AsyncRead + Unpin,
{
    with_input_reading_ahead(store, input, 0, work).await
}

/// [`with_input`], where each demand asks `input` for at least `read_ahead` bytes (up to
/// [`MAX_CHUNK`]), so that a consumer reading a few bytes at a time (a NAR parser reading
/// tokens) costs one hand-over between threads per `read_ahead` bytes rather than per read. For
/// inputs that end where their data ends (a framed payload, an inline NAR), never for a payload
/// pulled with `STDERR_READ`.
pub async fn with_input_reading_ahead<T, E, F, R>(
    store: &Arc<Store>,
    input: &mut R,
    read_ahead: usize,
    work: F,
) -> Result<T, BridgeError<E>>
where
    F: FnOnce(&Store, DemandReader) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: AsyncRead + Unpin,
{
    let (demand_tx, mut demand_rx) = mpsc::channel::<usize>(1);
    let (supply_tx, supply_rx) = mpsc::channel::<io::Result<Bytes>>(1);
    let reader = DemandReader { demand: demand_tx, supply: supply_rx, current: Bytes::new(), at_end: false };
    let store = Arc::clone(store);
    let task = tokio::task::spawn_blocking(move || work(&store, reader));
    let serve = async {
        while let Some(want) = demand_rx.recv().await {
            let mut buf = BytesMut::zeroed(want.max(read_ahead.min(MAX_CHUNK)));
            let got = input.read(&mut buf).await.map(|n| {
                buf.truncate(n);
                buf.freeze()
            });
            if supply_tx.send(got).await.is_err() {
                break;
            }
        }
    };
    let (joined, ()) = tokio::join!(task, serve);
    match joined {
        Ok(result) => result.map_err(BridgeError::Work),
        Err(e) => Err(BridgeError::Join(e.to_string())),
    }
}

/// A `Write` whose bytes go to an async writer on the other side.
#[derive(Debug)]
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    pending: BytesMut,
}

impl ChannelWriter {
    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.pending.split().freeze();
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the connection went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= MAX_CHUNK {
            self.send_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        // What a failed `work` wrote last is sent too; the caller decides what it is worth.
        let _ = self.send_pending();
    }
}

/// Runs `work` on the blocking pool with a writer whose bytes go to `output` as they come.
/// Returns `work`'s result; the output is flushed.
pub async fn with_output<T, E, F, W>(store: &Arc<Store>, output: &mut W, work: F) -> Result<T, BridgeError<E>>
where
    F: FnOnce(&Store, &mut ChannelWriter) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    W: AsyncWrite + Unpin,
{
    let (tx, rx) = mpsc::channel::<Bytes>(OUTPUT_DEPTH);
    let store = Arc::clone(store);
    let task = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter { tx, pending: BytesMut::new() };
        let result = work(&store, &mut writer);
        let flushed = writer.flush();
        (result, flushed)
    });
    let forward = async {
        // Owned here, so a failed write closes the channel and the blocking writer stops
        // (rather than waiting forever for room).
        let mut rx = rx;
        while let Some(chunk) = rx.recv().await {
            output.write_all(&chunk).await?;
        }
        output.flush().await
    };
    let (joined, forwarded) = tokio::join!(task, forward);
    let (result, _) = joined.map_err(|e| BridgeError::Join(e.to_string()))?;
    // When the client went away, the work failed because of it: report the cause.
    forwarded.map_err(BridgeError::Io)?;
    result.map_err(BridgeError::Work)
}

/// What blocking work sends to the client's logger.
#[derive(Debug)]
pub enum Outgoing {
    /// A logger message, sent as is.
    Message(LogMessage),
    /// A line of text at a level (dropped if the client's verbosity is lower).
    Line(Verbosity, String),
}

/// Sends log messages from blocking work to the client, in order.
#[derive(Debug, Clone)]
pub struct LogTx(mpsc::UnboundedSender<Outgoing>);

impl LogTx {
    /// Sends a logger message (activities, results).
    pub fn msg(&self, msg: LogMessage) {
        let _ = self.0.send(Outgoing::Message(msg));
    }

    /// Sends a line of text at `level` (without its line feed).
    pub fn line(&self, level: Verbosity, text: impl Into<String>) {
        let _ = self.0.send(Outgoing::Line(level, text.into()));
    }
}

/// Runs `work` on the blocking pool with a sender of log messages, which go to `logger` as
/// they come (filtered by the client's verbosity there).
pub async fn with_logs<T, E, F, W>(store: &Arc<Store>, logger: &mut ServerLogger<W>, work: F) -> Result<T, BridgeError<E>>
where
    F: FnOnce(&Store, LogTx) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let store = Arc::clone(store);
    let task = tokio::task::spawn_blocking(move || work(&store, LogTx(tx)));
    let forward = async {
        let mut broken = None;
        while let Some(out) = rx.recv().await {
            if broken.is_none() {
                let sent = match out {
                    Outgoing::Message(msg) => logger.forward(&msg).await,
                    Outgoing::Line(level, text) => logger.log(level, text).await,
                };
                if let Err(e) = sent {
                    // Keep draining so the work is never blocked; report once it ends.
                    broken = Some(e);
                }
            }
        }
        broken
    };
    let (joined, broken) = tokio::join!(task, forward);
    let value = joined.map_err(|e| BridgeError::Join(e.to_string()))?.map_err(BridgeError::Work)?;
    match broken {
        Some(e) => Err(BridgeError::Io(io::Error::other(e.to_string()))),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = store::StoreConfig::new(
            dir.path().join("store").to_str().unwrap(),
            dir.path().join("state"),
        );
        config.durability = castore::Durability::Unsynced;
        let store = Store::open(&config).unwrap();
        (dir, Arc::new(store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn input_is_read_on_demand_only() {
        let (_dir, store) = scratch_store();
        let data = vec![7u8; 1 << 20];
        let mut input = &data[..];
        let got = with_input(&store, &mut input, |_, mut r| {
            let mut first = vec![0u8; 1000];
            r.read_exact(&mut first).map(|()| first)
        })
        .await
        .unwrap();
        assert_eq!(got.len(), 1000);
        // Only what was asked for was taken from the input.
        assert_eq!(input.len(), (1 << 20) - 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn output_arrives_whole_and_errors_pass_through() {
        let (_dir, store) = scratch_store();
        let mut out = Vec::new();
        let n = with_output(&store, &mut out, |_, w| {
            for i in 0..1000u32 {
                w.write_all(&i.to_le_bytes())?;
            }
            Ok::<_, io::Error>(4000)
        })
        .await
        .unwrap();
        assert_eq!(n, out.len());
        assert_eq!(&out[4..8], &1u32.to_le_bytes());
        let failed = with_output(&store, &mut Vec::new(), |_, _| Err::<(), _>("no")).await;
        assert!(matches!(failed, Err(BridgeError::Work("no"))));
    }
}
