//! Worker-protocol reply decoding at every version from 1.21 to 1.38: no panic on any input;
//! honest "more bytes needed"; and every reply that decodes encodes, decodes back to itself and
//! encodes to the same bytes (see `worker_common::check`).
//!
//! Input: a version selector byte, an opcode selector byte (one of Nix's 44 opcodes), then the
//! reply's bytes.
#![no_main]

#[path = "worker_common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use worker_protocol::ops::{Opcode, Response};
use worker_protocol::WireCtx;

fuzz_target!(|data: &[u8]| {
    let [version, op, body @ ..] = data else { return };
    let ctx = WireCtx::worker(common::version(*version));
    let op = Opcode::ALL[usize::from(*op) % Opcode::ALL.len()];
    common::check(body, |d| Response::decode(op, d, &ctx), |r: &Response, out| {
        assert_eq!(r.opcode(), op);
        r.encode(out, &ctx)
    });
});
