//! Framed streams: exact wire layout, limits, truncation, draining, backpressure, and a 256 MiB
//! stream that is produced and consumed lazily.

use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::error::ProtocolError;

fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

#[tokio::test]
async fn writer_layout_has_no_padding() {
    let mut w = FramedWriter::with_frame_size(Vec::new(), 4);
    w.write_all(b"hello").await.unwrap();
    let out = w.finish().await.unwrap();
    let mut expected = frame(b"hell");
    expected.extend(frame(b"o"));
    expected.extend(0u64.to_le_bytes());
    assert_eq!(out, expected);

    // Flushing cuts a short frame; an empty stream is only the end marker.
    let mut w = FramedWriter::new(Vec::new());
    w.write_all(b"ab").await.unwrap();
    w.flush().await.unwrap();
    w.write_all(b"c").await.unwrap();
    let out = w.finish().await.unwrap();
    assert_eq!(out, [frame(b"ab"), frame(b"c"), 0u64.to_le_bytes().to_vec()].concat());
    assert_eq!(FramedWriter::new(Vec::new()).finish().await.unwrap(), 0u64.to_le_bytes());
}

#[tokio::test]
async fn abort_drops_the_unframed_rest() {
    let mut w = FramedWriter::with_frame_size(Vec::new(), 4);
    w.write_all(b"abcdef").await.unwrap();
    let out = w.abort().await.unwrap();
    assert_eq!(out, [frame(b"abcd"), 0u64.to_le_bytes().to_vec()].concat());
}

#[tokio::test]
async fn writes_after_the_end_fail() {
    let mut w = FramedWriter::new(Vec::new());
    w.shutdown().await.unwrap();
    assert!(w.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn reader_yields_payload_and_stops_at_the_end_marker() {
    let mut bytes = [frame(b"abc"), frame(b""), frame(b"defgh")].concat();
    // A zero-length frame is the end marker: "defgh" belongs to whatever follows the stream.
    let mut r = FramedReader::new(&bytes[..], 1024);
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
    assert!(r.is_finished());
    assert_eq!(r.into_inner(), &frame(b"defgh")[..]);

    bytes = [frame(b"abc"), frame(b"defgh"), 0u64.to_le_bytes().to_vec(), b"tail".to_vec()].concat();
    let mut r = FramedReader::new(&bytes[..], 1024);
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abcdefgh");
    assert_eq!(r.into_inner(), b"tail");
}

#[tokio::test]
async fn truncated_streams_are_unexpected_eof() {
    let bytes = [frame(b"abcdef"), 0u64.to_le_bytes().to_vec()].concat();
    for len in 0..bytes.len() {
        let mut r = FramedReader::new(&bytes[..len], 1024);
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).await.unwrap_err();
        assert!(matches!(ProtocolError::from_io(err), ProtocolError::UnexpectedEof), "prefix {len}");
    }
}

#[tokio::test]
async fn oversized_frames_fail_and_drain_skips_them() {
    let bytes = [frame(b"ok"), frame(&[7u8; 100]), frame(b"more"), 0u64.to_le_bytes().to_vec(), b"next op".to_vec()].concat();
    let mut r = FramedReader::new(&bytes[..], 50);
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).await.unwrap_err();
    assert!(matches!(ProtocolError::from_io(err), ProtocolError::FrameTooLarge { len: 100, max: 50 }));
    assert_eq!(got, b"ok");
    // Still refused until drained.
    assert!(r.read(&mut [0u8; 8]).await.is_err());
    assert_eq!(r.drain().await.unwrap(), 104);
    assert!(r.is_finished());
    assert_eq!(r.into_inner(), b"next op");
}

#[tokio::test]
async fn drain_after_a_partial_read() {
    let bytes = [frame(b"abcdef"), frame(b"ghij"), 0u64.to_le_bytes().to_vec(), b"rest".to_vec()].concat();
    let mut r = FramedReader::new(&bytes[..], 1024);
    let mut two = [0u8; 2];
    r.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"ab");
    assert_eq!(r.drain().await.unwrap(), 8);
    assert_eq!(r.drain().await.unwrap(), 0, "draining twice is harmless");
    assert_eq!(r.into_inner(), b"rest");
}

/// With nobody reading, the writer blocks instead of buffering without bound.
#[tokio::test]
async fn writer_applies_backpressure() {
    let (tx, _rx) = duplex(1024);
    let mut w = FramedWriter::with_frame_size(tx, 4096);
    let big = vec![1u8; 1 << 20];
    let r = tokio::time::timeout(Duration::from_millis(200), w.write_all(&big)).await;
    assert!(r.is_err(), "write_all should still be waiting for the reader");
    assert!(w.buffered() <= 2 * 4096 + 8, "buffered {}", w.buffered());
}

/// A cheap deterministic byte generator (xorshift), so neither side holds the stream.
struct Generator(u64);

impl Generator {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn checksum(acc: u64, data: &[u8]) -> u64 {
    data.iter().fold(acc, |a, &b| a.rotate_left(5) ^ u64::from(b))
}

/// 256 MiB through a 64 KiB pipe, written and read in odd-sized pieces, then the connection is
/// used for something else: neither side ever holds more than a few frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stream_is_streamed_lazily() {
    const TOTAL: u64 = 256 << 20;
    let (tx, rx) = duplex(64 << 10);
    let producer = tokio::spawn(async move {
        let mut w = FramedWriter::new(tx);
        let mut gen = Generator(0x1234_5678_9abc_def1);
        let mut buf = vec![0u8; 100_003];
        let (mut sent, mut sum) = (0u64, 0u64);
        while sent < TOTAL {
            let n = buf.len().min((TOTAL - sent) as usize);
            gen.fill(&mut buf[..n]);
            sum = checksum(sum, &buf[..n]);
            w.write_all(&buf[..n]).await.unwrap();
            assert!(w.buffered() <= 2 * FramedWriter::<tokio::io::DuplexStream>::DEFAULT_FRAME_SIZE + 8);
            sent += n as u64;
        }
        let mut tx = w.finish().await.unwrap();
        tx.write_all(b"after").await.unwrap();
        sum
    });
    let mut r = FramedReader::new(rx, 1 << 20);
    let mut buf = vec![0u8; 77_777];
    let (mut got, mut sum) = (0u64, 0u64);
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        sum = checksum(sum, &buf[..n]);
        got += n as u64;
    }
    assert_eq!(got, TOTAL);
    assert_eq!(sum, producer.await.unwrap());
    let mut rx = r.into_inner();
    let mut after = [0u8; 5];
    rx.read_exact(&mut after).await.unwrap();
    assert_eq!(&after, b"after");
}

/// An inner writer that takes at most `chunk` bytes per call and is not ready every other call,
/// like a socket whose buffer keeps filling up.
#[derive(Debug)]
struct Stingy {
    out: Vec<u8>,
    chunk: usize,
    calls: usize,
    /// After this many bytes it takes nothing more (stays not ready).
    stall_after: usize,
}

impl tokio::io::AsyncWrite for Stingy {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.calls += 1;
        if self.calls % 2 == 0 || self.out.len() >= self.stall_after {
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let n = buf.len().min(self.chunk).min(self.stall_after - self.out.len());
        self.out.extend_from_slice(&buf[..n]);
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

async fn read_all(bytes: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut got = Vec::new();
    FramedReader::new(bytes, 1 << 20).read_to_end(&mut got).await?;
    Ok(got)
}

/// Large writes go out as frames straight from the caller's buffer, even when the inner writer
/// takes them in odd pieces: the stream decodes to the same bytes, in frames of at most the
/// frame size.
#[tokio::test]
async fn direct_frames_through_a_stingy_writer() {
    let mut data = vec![0u8; 300_000];
    Generator(7).fill(&mut data);
    for (frame_size, chunk) in [(4096, 1000), (4096, 5), (1000, 4096), (32 << 10, 7 << 10)] {
        let inner = Stingy { out: Vec::new(), chunk, calls: 0, stall_after: usize::MAX };
        let mut w = FramedWriter::with_frame_size(inner, frame_size);
        for piece in data.chunks(10_007) {
            w.write_all(piece).await.unwrap();
            assert!(w.buffered() <= 2 * frame_size + 8, "buffered {}", w.buffered());
        }
        let out = w.finish().await.unwrap().out;
        assert_eq!(read_all(&out).await.unwrap(), data, "frame size {frame_size}, chunk {chunk}");
        // Walk the frames: none is larger than the frame size.
        let mut at = 0;
        loop {
            let len = u64::from_le_bytes(out[at..at + 8].try_into().unwrap()) as usize;
            assert!(len <= frame_size);
            at += 8 + len;
            if len == 0 {
                break;
            }
        }
        assert_eq!(at, out.len());
    }
}

/// A write abandoned in the middle of a frame sent straight from the caller's buffer leaves the
/// frame short: finishing fails, aborting pads it.
#[tokio::test]
async fn abandoned_direct_frame() {
    let data = vec![9u8; 10_000];
    for abort in [false, true] {
        let inner = Stingy { out: Vec::new(), chunk: 1 << 20, calls: 0, stall_after: 3000 };
        let mut w = FramedWriter::with_frame_size(inner, 4096);
        let r = tokio::time::timeout(Duration::from_millis(50), w.write_all(&data)).await;
        assert!(r.is_err(), "the write stalls");
        w.get_mut_for_tests().stall_after = usize::MAX;
        if abort {
            let out = w.abort().await.unwrap().out;
            let got = read_all(&out).await.unwrap();
            assert_eq!(got.len(), 4096, "the started frame, padded");
            assert!(got[..3000 - 8].iter().all(|&b| b == 9) && got[3000 - 8..].iter().all(|&b| b == 0));
        } else {
            let err = w.finish().await.unwrap_err();
            assert!(matches!(&err, ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput), "{err:?}");
        }
    }
}

/// An inner reader that counts its reads.
struct Counting<'a> {
    data: &'a [u8],
    reads: usize,
}

impl tokio::io::AsyncRead for Counting<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.reads += 1;
        let n = buf.remaining().min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

/// With room in the caller's buffer, each frame costs one read of the inner reader (its
/// payload and the next header together), and nothing past the end marker is read.
#[tokio::test]
async fn one_inner_read_per_frame() {
    let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
    let mut bytes: Vec<u8> = frames.iter().flat_map(|f| frame(f)).collect();
    bytes.extend(0u64.to_le_bytes());
    bytes.extend_from_slice(b"next message");
    let mut r = FramedReader::new(Counting { data: &bytes, reads: 0 }, 1024);
    let mut buf = vec![0u8; 4096];
    let n = r.read(&mut buf).await.unwrap();
    assert_eq!(n, 1000, "one call gathers every frame");
    assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    assert!(r.is_finished());
    let inner = r.into_inner();
    assert_eq!(inner.reads, 11, "the first header, then one read per frame");
    assert_eq!(inner.data, b"next message");
}
