//! `PullSource` against `process_stderr` and against clients that misbehave.

use tokio::io::{duplex, split, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::error::ProtocolError;
use crate::logger::codes::*;
use crate::wire::io::{read_u64, write_u64};

/// Pulls everything `data` holds through a `PullSource` with chunks of `chunk` bytes, with
/// `process_stderr` answering on the other side, and returns what arrived and the source's
/// request count and buffer capacity.
async fn pull_all(data: &[u8], chunk: usize) -> (Vec<u8>, u64, usize) {
    let (client, server) = duplex(4096);
    let (mut sr, mut sw) = split(server);
    let (mut cr, mut cw) = split(client);
    let server = async {
        let mut source = PullSource::new(&mut sr, &mut sw).with_chunk_size(chunk);
        let mut got = Vec::new();
        source.read_to_end(&mut got).await.unwrap();
        assert!(source.is_eof());
        // Reads after the end stay at the end and send nothing more.
        assert_eq!(source.read(&mut [0u8; 4]).await.unwrap(), 0);
        let (received, capacity) = (source.received(), source.buffer_capacity());
        write_u64(&mut sw, STDERR_LAST).await.unwrap();
        sw.flush().await.unwrap();
        (got, received, capacity)
    };
    let mut input = data;
    let (c, mut sink) = (ctx(21), LogCollector::new(0));
    let client = process_stderr(&mut cr, &mut cw, &c, &mut sink, Some(&mut input));
    let ((got, received, capacity), r) = tokio::join!(server, client);
    r.unwrap();
    assert_eq!(received, data.len() as u64);
    (got, received, capacity)
}

#[tokio::test]
async fn pulls_everything_in_bounded_chunks() {
    for (len, chunk) in [(0usize, 8usize), (1, 8), (1000, 10), (1000, 7), (300_000, 4096), (70_000, PullSource::<&[u8], Vec<u8>>::DEFAULT_CHUNK)] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let (got, _, capacity) = pull_all(&data, chunk).await;
        assert_eq!(got, data, "{len} bytes in chunks of {chunk}");
        assert!(capacity <= chunk + 7 + 16, "buffer of {capacity} bytes for chunks of {chunk}");
    }
}

#[test]
fn chunk_sizes_are_bounded() {
    let (mut r, mut w) = (&b""[..], Vec::new());
    assert_eq!(PullSource::new(&mut r, &mut w).with_chunk_size(0).chunk_size(), 1);
    assert_eq!(PullSource::new(&mut r, &mut w).with_chunk_size(usize::MAX).chunk_size(), 8 << 20);
    assert_eq!(PullSource::new(&mut r, &mut w).chunk_size(), 64 << 10);
}

/// A server end with a `PullSource` asking for 16 bytes at a time, and the client end.
fn connection() -> (DuplexStream, DuplexStream) {
    duplex(1024)
}

/// Reads one request from the client end and checks it.
async fn expect_request(client: &mut DuplexStream, max: u64) {
    assert_eq!(read_u64(client).await.unwrap(), STDERR_READ);
    assert_eq!(read_u64(client).await.unwrap(), max);
}

async fn failing_read(answer: Vec<u8>, close: bool) -> ProtocolError {
    let (server, mut client) = connection();
    let (mut sr, mut sw) = split(server);
    let server = async {
        let mut source = PullSource::new(&mut sr, &mut sw).with_chunk_size(16);
        let mut buf = [0u8; 64];
        let err = source.read(&mut buf).await.unwrap_err();
        // The source stays failed: its connection is out of step.
        assert!(source.read(&mut buf).await.is_err());
        ProtocolError::from_io(err)
    };
    let client = async {
        expect_request(&mut client, 16).await;
        client.write_all(&answer).await.unwrap();
        // Either close the connection, or keep it open until the server is done.
        (!close).then_some(client)
    };
    tokio::join!(server, client).0
}

#[tokio::test]
async fn answers_longer_than_asked_are_refused() {
    let answer = Wire::default().s(&[1u8; 17]);
    let err = failing_read(answer.bytes().to_vec(), false).await;
    assert!(matches!(err, ProtocolError::StringTooLong { len: 17, max: 16 }), "{err:?}");
}

#[tokio::test]
async fn bad_padding_and_cut_answers_are_refused() {
    let mut bad = Wire::default().s(b"abc").bytes().to_vec();
    bad[12] = 1;
    let err = failing_read(bad, false).await;
    assert!(matches!(err, ProtocolError::NonZeroPadding), "{err:?}");
    let cut = Wire::default().n(10).bytes()[..8].to_vec();
    let mut cut = cut;
    cut.extend_from_slice(b"12345");
    let err = failing_read(cut, true).await;
    assert!(matches!(err, ProtocolError::UnexpectedEof), "{err:?}");
    let err = failing_read(vec![3, 0, 0], true).await;
    assert!(matches!(err, ProtocolError::UnexpectedEof), "{err:?}");
}

/// Bytes are handed out in the consumer's sizes from one answer, and a new request goes out
/// only when the answer is used up; an empty read buffer sends nothing.
#[tokio::test]
async fn one_request_per_answer() {
    let (server, mut client) = connection();
    let (mut sr, mut sw) = split(server);
    let server = async {
        let mut source = PullSource::new(&mut sr, &mut sw).with_chunk_size(16);
        assert_eq!(source.read(&mut []).await.unwrap(), 0);
        let mut small = [0u8; 4];
        let mut got = Vec::new();
        for _ in 0..3 {
            source.read_exact(&mut small).await.unwrap();
            got.extend_from_slice(&small);
        }
        let mut rest = Vec::new();
        source.read_to_end(&mut rest).await.unwrap();
        got.extend_from_slice(&rest);
        (got, source.received())
    };
    let client = async {
        expect_request(&mut client, 16).await;
        client.write_all(Wire::default().s(b"0123456789").bytes()).await.unwrap();
        expect_request(&mut client, 16).await;
        client.write_all(Wire::default().s(b"abcdef").bytes()).await.unwrap();
        expect_request(&mut client, 16).await;
        client.write_all(Wire::default().s(b"").bytes()).await.unwrap();
        client
    };
    let ((got, received), mut client) = tokio::join!(server, client);
    assert_eq!(got, b"0123456789abcdef");
    assert_eq!(received, 16);
    // Nothing else was sent.
    drop(sr);
    drop(sw);
    let mut extra = Vec::new();
    client.read_to_end(&mut extra).await.unwrap();
    assert!(extra.is_empty(), "{extra:?}");
}
