//! Logger-channel message reading (`read_message`) at worker versions 1.10 to 1.38: no panic on
//! any input, nothing read past the message, and every message read encodes (where its version
//! has it), reads back to itself using every byte, and encodes to the same bytes again.
//!
//! Input: a version selector byte, then the stream. Reading from a byte slice never waits, so
//! the future is polled once, without a runtime.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use worker_protocol::logger::{read_message, LogMessage};
use worker_protocol::{ProtocolError, ProtocolVersion, WireCtx};

/// Polls a future that cannot wait (it reads from a slice) to its end.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("reading from a byte slice waited"),
    }
}

/// Reads one message from `input`, returning it and the bytes it used.
fn read(input: &[u8], ctx: &WireCtx) -> Result<(LogMessage, usize), ProtocolError> {
    let mut rest = input;
    let msg = now(read_message(&mut rest, ctx))?;
    Ok((msg, input.len() - rest.len()))
}

fuzz_target!(|data: &[u8]| {
    let [version, stream @ ..] = data else { return };
    let version = ProtocolVersion::new(1, 10 + version % 29);
    let ctx = WireCtx::worker(version);
    let Ok((msg, used)) = read(stream, &ctx) else { return };
    assert!(used <= stream.len());
    let mut bytes = BytesMut::new();
    if !msg.exists_at(version) {
        // Activities are read at any version but cannot be written before 1.20.
        assert!(msg.encode(&mut bytes, version).is_err());
        return;
    }
    msg.encode(&mut bytes, version).unwrap_or_else(|e| panic!("{msg:?} was read but does not encode: {e}"));
    let (again, used) = read(&bytes, &ctx).unwrap_or_else(|e| panic!("the encoding of {msg:?} does not read: {e}"));
    assert_eq!(used, bytes.len());
    assert_eq!(again, msg);
    let mut twice = BytesMut::new();
    again.encode(&mut twice, version).expect("encodes again");
    assert_eq!(twice, bytes);
});
