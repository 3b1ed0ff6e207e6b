//! Throughput of the worker protocol's hot paths, timed with `std::time::Instant`
//! (`cargo bench -p worker-protocol --bench protocol`):
//!
//! 1. 100,000 `QueryPathInfo` replies (a typical path info: deriver, five references, one
//!    signature) encoded at 1.38 into one buffer, then decoded from it; also read back from an
//!    in-memory duplex pipe with `WireReader` and `Response::read`, as a client reads them.
//! 2. 1 GiB through an in-memory duplex pipe: framed (`FramedWriter` → pipe → `FramedReader`)
//!    against a plain copy through the same kind of pipe, in the same run; prints both
//!    throughputs and the framing overhead (target: under 5%).
//!
//! Each measurement is the best of several runs. Both ends of the pipe run on one thread
//! (a current-thread runtime), so a time is the CPU cost of both ends together.
//!
//! Environment: `PROTOCOL_BENCH_RUNS` (default 25), `PROTOCOL_BENCH_MIB` (default 1024),
//! `PROTOCOL_BENCH_ONLY` (`query-path-info` or `framed`: run just that one).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::{StoreDir, StorePath};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use worker_protocol::framed::{FramedReader, FramedWriter};
use worker_protocol::ops::{Opcode, Response};
use worker_protocol::types::UnkeyedValidPathInfo;
use worker_protocol::wire::{Decoder, WireReader};
use worker_protocol::{Limits, ProtocolVersion, WireCtx};

const REPLIES: usize = 100_000;
/// The pipe's buffer, each way: about what a Unix socket holds.
const PIPE_BUFFER: usize = 256 << 10;
/// What the producer hands to the writer at a time, and what the consumer reads at a time.
const IO_CHUNK: usize = 64 << 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

/// The best time of `runs` runs of `f`, and what the last run returned.
fn best_of<T>(runs: u64, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed());
        out = Some(value);
    }
    (best, out.expect("at least one run"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

fn store_path(i: usize, name: &str) -> StorePath {
    let hash = Hash::of(Algorithm::Sha256, format!("{name}{i}").as_bytes()).to_nix32();
    StoreDir::default().parse(&format!("/nix/store/{}-{name}", &hash[..32])).expect("a valid path")
}

/// A path info like the ones a store holds for a package.
fn path_info(i: usize) -> UnkeyedValidPathInfo {
    let mut info = UnkeyedValidPathInfo::new(Hash::of(Algorithm::Sha256, &i.to_le_bytes()));
    info.deriver = Some(store_path(i, "hello-2.12.1.drv"));
    info.references = (0..5).map(|r| store_path(i * 5 + r, "glibc-2.40")).collect();
    info.registration_time = 1_700_000_000 + i as u64;
    info.nar_size = 123_456 + i as u64;
    info.ultimate = i % 2 == 0;
    info.sigs = BTreeSet::from([format!("cache.nixos.org-1:{}", "A".repeat(86) + "==")]);
    info
}

fn query_path_info(runs: u64) {
    let ctx = WireCtx::worker(ProtocolVersion::new(1, 38));
    let replies: Vec<Response> = (0..REPLIES).map(|i| Response::QueryPathInfo(Some(path_info(i)))).collect();

    let (encode_time, encoded) = best_of(runs, || {
        let mut out = BytesMut::new();
        for reply in &replies {
            reply.encode(&mut out, &ctx).expect("encodes");
        }
        out
    });
    let bytes = encoded.len() as u64;
    let (decode_time, decoded) = best_of(runs, || {
        let mut d = Decoder::new(&encoded, Limits::DEFAULT);
        (0..REPLIES)
            .map(|_| Response::decode(Opcode::QueryPathInfo, &mut d, &ctx).expect("decodes"))
            .collect::<Vec<_>>()
    });
    assert!(decoded == replies, "decoded replies differ");
    let (stream_time, count) = best_of(runs, || {
        runtime().block_on(async {
            let (mut tx, rx) = tokio::io::duplex(PIPE_BUFFER);
            let data = encoded.clone().freeze();
            let writer = async move {
                for chunk in data.chunks(IO_CHUNK) {
                    tx.write_all(chunk).await.expect("pipe write");
                }
            };
            let reader = async {
                let mut r = WireReader::new(rx);
                let mut n = 0;
                for _ in 0..REPLIES {
                    Response::read(Opcode::QueryPathInfo, &mut r, &ctx).await.expect("reads");
                    n += 1;
                }
                n
            };
            tokio::join!(writer, reader).1
        })
    });
    assert_eq!(count, REPLIES);

    let per_s = |t: Duration| REPLIES as f64 / t.as_secs_f64();
    println!("QueryPathInfo replies: {REPLIES} at 1.38, {bytes} bytes ({} bytes each)", bytes / REPLIES as u64);
    println!(
        "  encode            {:>8.1} ms  {:>10.0} replies/s  {:>7.1} MB/s",
        encode_time.as_secs_f64() * 1e3,
        per_s(encode_time),
        mb_per_s(bytes, encode_time)
    );
    println!(
        "  decode            {:>8.1} ms  {:>10.0} replies/s  {:>7.1} MB/s",
        decode_time.as_secs_f64() * 1e3,
        per_s(decode_time),
        mb_per_s(bytes, decode_time)
    );
    let both = encode_time + decode_time;
    println!(
        "  encode + decode   {:>8.1} ms  {:>10.0} replies/s  {:>7.1} MB/s",
        both.as_secs_f64() * 1e3,
        per_s(both),
        mb_per_s(bytes, both)
    );
    println!(
        "  read from a pipe  {:>8.1} ms  {:>10.0} replies/s  {:>7.1} MB/s  (WireReader + Response::read)",
        stream_time.as_secs_f64() * 1e3,
        per_s(stream_time),
        mb_per_s(bytes, stream_time)
    );
}

/// Writes `total` bytes of `pattern` to `w` in `IO_CHUNK` pieces, then shuts it down.
async fn produce(mut w: impl AsyncWrite + Unpin, pattern: &[u8], total: u64) {
    let mut left = total;
    while left > 0 {
        let n = left.min(pattern.len() as u64) as usize;
        w.write_all(&pattern[..n]).await.expect("write");
        left -= n as u64;
    }
    w.shutdown().await.expect("shutdown");
}

/// Every how many bytes of the stream `consume` samples one for its checksum.
const SAMPLE_EVERY: u64 = 4096;

/// Reads `r` to its end in `IO_CHUNK` pieces; returns the byte count and a checksum of the bytes
/// at every multiple of `SAMPLE_EVERY` in the stream (cheap, and the same however reads split).
async fn consume(mut r: impl AsyncRead + Unpin) -> (u64, u64) {
    let mut buf = vec![0u8; IO_CHUNK];
    let (mut total, mut sum) = (0u64, 0u64);
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            return (total, sum);
        }
        let mut at = total.next_multiple_of(SAMPLE_EVERY);
        while at < total + n as u64 {
            sum = sum.wrapping_mul(31).wrapping_add(u64::from(buf[(at - total) as usize]));
            at += SAMPLE_EVERY;
        }
        total += n as u64;
    }
}

fn plain_copy(pattern: &[u8], total: u64) -> (u64, u64) {
    runtime().block_on(async {
        let (tx, rx) = tokio::io::duplex(PIPE_BUFFER);
        tokio::join!(produce(tx, pattern, total), consume(rx)).1
    })
}

fn framed_copy(pattern: &[u8], total: u64) -> (u64, u64) {
    runtime().block_on(async {
        let (tx, rx) = tokio::io::duplex(PIPE_BUFFER);
        let mut reader = FramedReader::new(rx, Limits::DEFAULT.max_frame_len);
        let (_, got) = tokio::join!(produce(FramedWriter::new(tx), pattern, total), consume(&mut reader));
        assert!(reader.is_finished(), "the end marker was read");
        got
    })
}

fn framed_stream(runs: u64, mib: u64) {
    let total = mib << 20;
    let pattern: Vec<u8> = (0..IO_CHUNK).map(|i| (i * 7 + i / 251) as u8).collect();
    // Interleaved, so that all see the same machine conditions; the best of each counts (other
    // processes only ever add time). The plain copy runs twice per round: the difference
    // between its two bests shows how much of a difference is noise.
    let mut best = [Duration::MAX; 3];
    let mut results = Vec::new();
    for _ in 0..runs {
        for (slot, framed) in [(0, false), (1, true), (2, false)] {
            let start = Instant::now();
            results.push(if framed { framed_copy(&pattern, total) } else { plain_copy(&pattern, total) });
            best[slot] = best[slot].min(start.elapsed());
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]) && results[0].0 == total, "every copy delivers the same bytes");
    let plain = best[0].min(best[2]);
    let framed = best[1];
    let ratio = |a: Duration, b: Duration| (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0;
    println!(
        "{mib} MiB through a duplex pipe ({} KiB buffer, {} KiB writes and reads, {} KiB frames), best of {runs}:",
        PIPE_BUFFER >> 10,
        IO_CHUNK >> 10,
        FramedWriter::<tokio::io::DuplexStream>::DEFAULT_FRAME_SIZE >> 10
    );
    for (what, time) in [("plain copy", plain), ("framed", framed)] {
        println!("  {what:<10}  {:>7.1} ms  {:>8.1} MB/s", time.as_secs_f64() * 1e3, mb_per_s(total, time));
    }
    println!(
        "  framing overhead: {:+.1}% (target: under 5%; noise, plain copy against itself: {:+.1}%)",
        ratio(framed, plain),
        ratio(best[2], best[0])
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { env_number("PROTOCOL_BENCH_RUNS", 25) };
    if quick {
        println!("(quick run: pass --bench, as `cargo bench` does, for the real measurement)");
        framed_stream_quick();
        return;
    }
    let only = std::env::var("PROTOCOL_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "query-path-info" {
        query_path_info(runs);
    }
    if only.is_empty() || only == "framed" {
        framed_stream(runs, env_number("PROTOCOL_BENCH_MIB", 1024));
    }
}

/// A smoke run for `cargo test --benches`: 8 MiB each way, results checked, nothing timed.
fn framed_stream_quick() {
    let pattern: Vec<u8> = (0..IO_CHUNK).map(|i| i as u8).collect();
    assert_eq!(plain_copy(&pattern, 8 << 20), framed_copy(&pattern, 8 << 20));
}
