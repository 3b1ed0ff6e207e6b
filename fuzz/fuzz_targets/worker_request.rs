//! Worker-protocol request decoding at every version from 1.21 to 1.38: no panic on any input;
//! honest "more bytes needed"; and every request that decodes encodes, decodes back to itself
//! and encodes to the same bytes (see `worker_common::check`).
//!
//! Input: a version selector byte, an opcode selector byte, then the body. Opcode selectors
//! below 220 pick one of Nix's 44 opcodes (removed ones included) and decode the fields with
//! `Request::decode`; the others decode a whole message, opcode first, with
//! `Request::decode_message`.
#![no_main]

#[path = "worker_common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use worker_protocol::ops::{Opcode, Request};
use worker_protocol::WireCtx;

fuzz_target!(|data: &[u8]| {
    let [version, op, body @ ..] = data else { return };
    let ctx = WireCtx::worker(common::version(*version));
    if *op < 220 {
        let op = Opcode::ALL[usize::from(*op) % Opcode::ALL.len()];
        common::check(body, |d| Request::decode(op, d, &ctx), |r: &Request, out| {
            assert_eq!(r.opcode(), op);
            r.encode_body(out, &ctx)
        });
    } else {
        common::check(body, |d| Request::decode_message(d, &ctx), |r: &Request, out| r.encode(out, &ctx));
    }
});
