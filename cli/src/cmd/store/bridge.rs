//! Bridges between blocking code (`nix_formats`' NAR writer and reader work on `std::io`) and
//! the async connection, through a bounded channel of chunks, so that a NAR streams through in
//! bounded memory whatever its size.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::{channel, OwnedPermit, Receiver, Sender};
use tokio::task::JoinHandle;

/// The size of the chunks that cross the channel.
const CHUNK: usize = 64 << 10;
/// How many chunks may wait in the channel.
const DEPTH: usize = 4;

/// What crosses the channel of [`produce`].
enum Piece {
    Data(Vec<u8>),
    /// The producer finished successfully.
    End,
    /// The producer failed with this message.
    Failed(String),
}

/// Runs `produce` on a blocking thread and returns what it writes as an `AsyncRead`, with the
/// handle of its result. The reader ends only when `produce` succeeds; if it fails (or panics),
/// the reader fails rather than seeming to end, so a cut-short stream is never taken as whole.
pub fn produce<F>(produce: F) -> (ChunkReader, JoinHandle<anyhow::Result<()>>)
where
    F: FnOnce(&mut ChunkWriter) -> anyhow::Result<()> + Send + 'static,
{
    let (tx, rx) = channel(DEPTH);
    let handle = tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter { tx, buf: Vec::with_capacity(CHUNK) };
        let result = produce(&mut writer).and_then(|()| Ok(writer.flush()?));
        let last = match &result {
            Ok(()) => Piece::End,
            Err(e) => Piece::Failed(format!("{e:#}")),
        };
        // The reader may be gone already; then nobody needs to know.
        let _ = writer.tx.blocking_send(last);
        result
    });
    (ChunkReader { rx, chunk: Vec::new(), pos: 0, ended: false }, handle)
}

/// Runs `consume` on a blocking thread over what is written to the returned `AsyncWrite`, with
/// the handle of its result. Once `consume` has returned, further writes are discarded.
pub fn consume<F, T>(consume: F) -> (ChunkSink, JoinHandle<anyhow::Result<T>>)
where
    F: FnOnce(&mut ChunkSource) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = channel(DEPTH);
    let handle = tokio::task::spawn_blocking(move || consume(&mut ChunkSource { rx, chunk: Vec::new(), pos: 0 }));
    (ChunkSink { tx: Some(tx), reserving: None }, handle)
}

/// The blocking side of [`produce`]: a `Write` that sends chunks.
pub struct ChunkWriter {
    tx: Sender<Piece>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Piece::Data(chunk)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// The async side of [`produce`].
pub struct ChunkReader {
    rx: Receiver<Piece>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl AsyncRead for ChunkReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pos == this.chunk.len() {
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.rx.poll_recv(cx)) {
                Some(Piece::Data(chunk)) => (this.chunk, this.pos) = (chunk, 0),
                Some(Piece::End) => this.ended = true,
                Some(Piece::Failed(message)) => return Poll::Ready(Err(io::Error::other(message))),
                None => return Poll::Ready(Err(io::Error::other("the producing thread stopped"))),
            }
        }
        let n = (this.chunk.len() - this.pos).min(out.remaining());
        out.put_slice(&this.chunk[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

type Reserve = Pin<Box<dyn Future<Output = Result<OwnedPermit<Vec<u8>>, SendError<()>>> + Send>>;

/// The async side of [`consume`]: an `AsyncWrite` that sends chunks, waiting for room.
pub struct ChunkSink {
    tx: Option<Sender<Vec<u8>>>,
    reserving: Option<Reserve>,
}

impl AsyncWrite for ChunkSink {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(tx) = &this.tx else { return Poll::Ready(Ok(data.len())) };
        let reserve = this.reserving.get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let permit = ready!(reserve.as_mut().poll(cx));
        this.reserving = None;
        match permit {
            Ok(permit) => {
                let n = data.len().min(CHUNK);
                permit.send(data[..n].to_vec());
                Poll::Ready(Ok(n))
            }
            Err(_) => {
                // The consumer is done: the rest is not wanted.
                this.tx = None;
                Poll::Ready(Ok(data.len()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the channel: the consumer sees the end of its input.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tx = None;
        this.reserving = None;
        Poll::Ready(Ok(()))
    }
}

/// The blocking side of [`consume`]: a `Read` over the chunks sent.
pub struct ChunkSource {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkSource {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => (self.chunk, self.pos) = (chunk, 0),
                None => return Ok(0),
            }
        }
        let n = (self.chunk.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn both_directions_carry_every_byte() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            let expected = data.clone();
            let (mut reader, handle) = produce(move |w| {
                for piece in data.chunks(7777) {
                    w.write_all(piece)?;
                }
                Ok(())
            });
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.unwrap();
            handle.await.unwrap().unwrap();
            assert_eq!(got, expected);

            let (mut sink, handle) = consume(|source| {
                let mut all = Vec::new();
                source.read_to_end(&mut all)?;
                Ok(all)
            });
            sink.write_all(&expected).await.unwrap();
            sink.shutdown().await.unwrap();
            assert_eq!(handle.await.unwrap().unwrap(), expected);

            // A consumer that stops early: the rest is discarded, nothing blocks.
            let (mut sink, handle) = consume(|source| {
                let mut first = [0u8; 10];
                source.read_exact(&mut first)?;
                Ok(first)
            });
            sink.write_all(&expected).await.unwrap();
            sink.shutdown().await.unwrap();
            assert_eq!(&handle.await.unwrap().unwrap(), &expected[..10]);

            // A producer that fails: the reader fails too, it does not seem to end.
            let (mut reader, handle) = produce(|w| {
                w.write_all(b"partial")?;
                anyhow::bail!("disk on fire")
            });
            let mut got = Vec::new();
            let err = reader.read_to_end(&mut got).await.unwrap_err();
            assert!(err.to_string().contains("disk on fire"), "{err}");
            assert!(handle.await.unwrap().is_err());
        });
    }
}
