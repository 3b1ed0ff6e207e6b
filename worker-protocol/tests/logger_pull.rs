//! 200 MiB pulled from a client through `STDERR_READ` with bounded memory: the daemon side reads
//! through a `PullSource`, the client side answers from a reader that makes the bytes up as it
//! goes, and nothing ever holds more than a chunk. This file holds one test so that the
//! process's peak memory is this test's alone.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{duplex, split, AsyncRead, AsyncReadExt, ReadBuf};
use worker_protocol::logger::{process_stderr, LogCollector, ServerLogger, Verbosity};
use worker_protocol::{ProtocolVersion, WireCtx};

const TOTAL: u64 = 200 << 20;

/// The byte at `offset` of the made-up data: the little-endian bytes of the offset's 8-byte word
/// number, so that a byte lost, doubled or moved is noticed.
fn byte_at(offset: u64) -> u8 {
    (offset / 8).to_le_bytes()[(offset % 8) as usize]
}

/// Fills `out` with the made-up bytes from `start` on, a word at a time where it can.
fn fill(out: &mut [u8], start: u64) {
    let head = (((8 - start % 8) % 8) as usize).min(out.len());
    let (first, rest) = out.split_at_mut(head);
    for (i, b) in first.iter_mut().enumerate() {
        *b = byte_at(start + i as u64);
    }
    let aligned = start + head as u64;
    let rest_len = rest.len();
    let mut words = rest.chunks_exact_mut(8);
    for (i, w) in (&mut words).enumerate() {
        w.copy_from_slice(&(aligned / 8 + i as u64).to_le_bytes());
    }
    let tail = words.into_remainder();
    let tail_start = aligned + (rest_len - tail.len()) as u64;
    for (i, b) in tail.iter_mut().enumerate() {
        *b = byte_at(tail_start + i as u64);
    }
}

/// An `AsyncRead` of `len` made-up bytes.
struct MadeUp {
    pos: u64,
    len: u64,
}

impl AsyncRead for MadeUp {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = (self.len - self.pos).min(buf.remaining() as u64);
        let start = self.pos;
        fill(buf.initialize_unfilled_to(n as usize), start);
        buf.advance(n as usize);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// The peak resident memory of this process, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn two_hundred_mib_with_bounded_memory() {
    let version = ProtocolVersion::new(1, 21);
    let (client, server) = duplex(64 << 10);
    let (mut server_read, server_write) = split(server);
    let (mut client_read, mut client_write) = split(client);

    let daemon = async move {
        let mut logger = ServerLogger::new(server_write, version);
        logger.start_work().await.unwrap();
        logger.log(Verbosity::Info, "receiving").await.unwrap();
        let mut source = logger.pull_source(&mut server_read).unwrap();
        let (mut buf, mut expected) = (vec![0u8; 50_000], vec![0u8; 50_000]);
        let mut offset = 0u64;
        loop {
            let n = source.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            fill(&mut expected[..n], offset);
            assert!(buf[..n] == expected[..n], "wrong bytes in {n} from {offset}");
            offset += n as u64;
        }
        assert!(source.is_eof());
        assert!(source.buffer_capacity() <= (64 << 10) + 8, "{}", source.buffer_capacity());
        logger.log(Verbosity::Info, format!("received {offset} bytes")).await.unwrap();
        logger.last().await.unwrap();
        offset
    };
    let client = async move {
        let mut data = MadeUp { pos: 0, len: TOTAL };
        let mut sink = LogCollector::new(1 << 10);
        let ctx = WireCtx::worker(version);
        process_stderr(&mut client_read, &mut client_write, &ctx, &mut sink, Some(&mut data)).await.unwrap();
        assert_eq!(data.pos, TOTAL);
        sink.lines()
    };
    let (received, lines) =
        tokio::time::timeout(Duration::from_secs(300), async { tokio::join!(daemon, client) }).await.expect("finishes");
    assert_eq!(received, TOTAL);
    assert_eq!(lines, ["receiving".to_owned(), format!("received {TOTAL} bytes")]);
    let peak = peak_rss();
    assert!(peak < 64 << 20, "peak memory {} MiB for {} MiB pulled", peak >> 20, TOTAL >> 20);
}
