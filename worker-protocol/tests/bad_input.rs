//! Bad input: a corpus of hostile conversations (truncated handshakes and frames, absurd
//! lengths and counts, unknown and removed opcodes, wrong padding, invalid store paths,
//! disconnects and silence in the middle of a message, byte-by-byte trickles) against a server
//! reading loop built from this crate's handshake, `WireReader`, `Request::read` and
//! `FramedReader` (`bad_input/server.rs`). The corpus is generated in code and documented case
//! by case in `bad_input/corpus.rs`.
//!
//! Every case runs over an in-memory duplex pipe and over a Unix socket pair, and must:
//! - end with the specific typed `ProtocolError` it names (or a clean close, for the controls),
//!   after the expected number of complete requests;
//! - end within [`client::CASE_LIMIT`] (2 s), by the server's own doing: a typed error, end of
//!   file, or its idle bound (300 ms without a byte) for a client that goes silent;
//! - allocate at most [`corpus::MEMORY_LIMIT`] (4 MiB) in total, however large the length, count or frame
//!   it announces (up to 2^63).
//!
//! Memory is measured with `stats_alloc`'s counting global allocator (this crate forbids unsafe
//! code, and a `GlobalAlloc` needs it). It counts every byte allocated during a case, freed or
//! not, so the count bounds the peak from above. The counter is process-wide, so the cases run
//! one at a time, under [`SERIAL`], each on its own single-threaded runtime.

#[path = "bad_input/client.rs"]
mod client;
#[path = "bad_input/corpus.rs"]
mod corpus;
#[path = "bad_input/server.rs"]
mod server;

use std::alloc::System;
use std::sync::Mutex;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

use client::{run, Transport};
use corpus::{Case, Expect};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Held by every test while it runs cases, so that allocation counts do not mix.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `cases` over both transports and checks each against its expectation and the bounds.
fn check(cases: Vec<Case>) {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut failures = Vec::new();
    for case in &cases {
        for transport in [Transport::Duplex, Transport::UnixSocketPair] {
            let result = run(case.name, &case.script, transport, GLOBAL);
            let outcome = &result.outcome;
            let ended = match &outcome.end {
                Ok(()) => "clean close".to_owned(),
                Err(e) => format!("{e:?}"),
            };
            eprintln!(
                "{:40} {:15} {:>5} ms {:>9} B allocated  {} request(s), then {}",
                case.name,
                format!("{transport:?}"),
                result.elapsed.as_millis(),
                result.allocated,
                outcome.requests.len(),
                ended
            );
            let mut problems = Vec::new();
            match (case.expect, &outcome.end) {
                (Expect::Closed { requests }, Ok(())) if outcome.requests.len() == requests => {}
                (Expect::Fails { requests, check, .. }, Err(e)) if check(e) && outcome.requests.len() == requests => {}
                (Expect::Closed { requests }, _) => {
                    problems.push(format!("expected a clean close after {requests} request(s)"))
                }
                (Expect::Fails { requests, error, .. }, _) => {
                    problems.push(format!("expected {error} after {requests} request(s)"))
                }
            }
            if result.allocated > case.memory_limit {
                problems.push(format!("allocated {} bytes, more than {}", result.allocated, case.memory_limit));
            }
            for problem in problems {
                failures.push(format!(
                    "{} over {transport:?}: {problem}; got {} request(s), then {ended}",
                    case.name,
                    outcome.requests.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn hostile_handshakes() {
    check(corpus::handshake_cases());
}

#[test]
fn hostile_requests() {
    check(corpus::request_cases());
}

#[test]
fn hostile_framed_streams() {
    check(corpus::framed_cases());
}

/// The corpus names are unique, and it covers every kind of attack the issue lists.
#[test]
fn corpus_is_complete() {
    let cases = corpus::all();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "duplicate case names");
    for needle in [
        "truncated_magic",
        "wrong_magic",
        "major_version_2",
        "truncated_frame",
        "frame_length_2_63",
        "string_length_2_62",
        "collection_count_2_40",
        "non_zero_padding",
        "unknown_opcode_9999",
        "removed_opcode",
        "store_path",
        "disconnect_mid",
        "silent_client",
        "trickled",
    ] {
        assert!(names.iter().any(|n| n.contains(needle)), "no case for {needle}");
    }
}
