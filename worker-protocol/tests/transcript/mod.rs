//! Recorded conversations between a real Nix client and a real Nix daemon: a recording proxy
//! ([`proxy`]) and a checker that decodes both directions with `worker_protocol::ops`, requiring
//! every request and reply to decode completely and to encode back to the very same bytes.

#![allow(dead_code)] // each test file uses a part

pub mod proxy;
pub mod scenario;

use std::collections::BTreeSet;

use bytes::BytesMut;
use nix_formats::store_path::StoreDir;
use worker_protocol::ops::{Opcode, Payload, ReplyData, Request, Response};
use worker_protocol::stderr::{
    STDERR_ERROR, STDERR_LAST, STDERR_NEXT, STDERR_READ, STDERR_RESULT, STDERR_START_ACTIVITY, STDERR_STOP_ACTIVITY,
    STDERR_WRITE,
};
use worker_protocol::types::ClientHandshakeInfo;
use worker_protocol::version::{WORKER_MAGIC_1, WORKER_MAGIC_2};
use worker_protocol::wire::{DecodeError, Decoder};
use worker_protocol::{Limits, ProtocolVersion, WireCtx, WireDecode};

/// How an operation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `STDERR_LAST` and a typed reply.
    Reply(Response),
    /// `STDERR_LAST` and a raw NAR (`NarFromPath`).
    Nar(Vec<u8>),
    /// `STDERR_ERROR` with this message.
    Error(String),
}

/// One operation of a conversation.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The decoded request.
    pub request: Request,
    /// The bytes of its framed payload.
    pub payload: Vec<u8>,
    /// The data the daemon sent in `STDERR_WRITE` messages.
    pub written: Vec<u8>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A whole connection.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The negotiated version.
    pub version: ProtocolVersion,
    /// The features both sides announced (from 1.38).
    pub features: (Vec<String>, Vec<String>),
    /// The daemon's handshake info.
    pub info: ClientHandshakeInfo,
    /// The operations, in order.
    pub exchanges: Vec<Exchange>,
}

/// A cursor over one direction of a recording.
struct Stream<'a> {
    name: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Stream<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// Decodes one value with `f`, returning it and the bytes it took.
    fn decode<T>(
        &mut self,
        ctx: &WireCtx,
        f: impl FnOnce(&mut Decoder<'a>, &WireCtx) -> Result<T, DecodeError>,
    ) -> Result<(T, &'a [u8]), String> {
        let start = self.pos;
        let mut d = Decoder::new(self.rest(), ctx.limits);
        let value = f(&mut d, ctx).map_err(|e| format!("{} at byte {start}: {e}", self.name))?;
        self.pos += d.position();
        Ok((value, &self.bytes[start..self.pos]))
    }

    fn u64(&mut self, ctx: &WireCtx) -> Result<u64, String> {
        Ok(self.decode(ctx, |d, _| d.read_u64())?.0)
    }

    fn string(&mut self, ctx: &WireCtx) -> Result<Vec<u8>, String> {
        Ok(self.decode(ctx, |d, _| d.read_bytes().map(<[u8]>::to_vec))?.0)
    }

    /// A framed stream's payload.
    fn framed(&mut self, ctx: &WireCtx) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let len = self.u64(ctx)? as usize;
            if len == 0 {
                return Ok(out);
            }
            let chunk = self.rest().get(..len).ok_or_else(|| format!("{}: a frame is cut off", self.name))?;
            out.extend_from_slice(chunk);
            self.pos += len;
        }
    }

    /// A NAR, found by parsing it.
    fn nar(&mut self) -> Result<Vec<u8>, String> {
        let mut rest = self.rest();
        let limits = nix_formats::nar::Limits::default();
        nix_formats::nar::validate_and_hash(&mut rest, nix_formats::hash::Algorithm::Sha256, &limits)
            .map_err(|e| format!("{}: bad NAR: {e}", self.name))?;
        let len = self.rest().len() - rest.len();
        let nar = self.rest()[..len].to_vec();
        self.pos += len;
        Ok(nar)
    }
}

/// Checks that `value` encodes back to exactly `bytes`.
fn same_bytes(what: &str, bytes: &[u8], encode: impl FnOnce(&mut BytesMut) -> Result<(), worker_protocol::ProtocolError>) -> Result<(), String> {
    let mut out = BytesMut::new();
    encode(&mut out).map_err(|e| format!("re-encoding {what}: {e}"))?;
    if &out[..] != bytes {
        return Err(format!("{what} re-encodes differently:\n  recorded {bytes:?}\n  ours     {:?}", &out[..]));
    }
    Ok(())
}

fn skip_fields(s: &mut Stream<'_>, ctx: &WireCtx) -> Result<(), String> {
    for _ in 0..s.u64(ctx)? {
        match s.u64(ctx)? {
            0 => drop(s.u64(ctx)?),
            1 => drop(s.string(ctx)?),
            other => return Err(format!("logger field type {other}")),
        }
    }
    Ok(())
}

/// Reads logger messages up to `STDERR_LAST` (`Ok(None)`) or an error (`Ok(Some(message))`),
/// collecting `STDERR_WRITE` data.
fn logger(s: &mut Stream<'_>, ctx: &WireCtx, written: &mut Vec<u8>) -> Result<Option<String>, String> {
    loop {
        match s.u64(ctx)? {
            STDERR_LAST => return Ok(None),
            STDERR_NEXT => drop(s.string(ctx)?),
            STDERR_WRITE => written.extend(s.string(ctx)?),
            STDERR_START_ACTIVITY => {
                for _ in 0..3 {
                    s.u64(ctx)?;
                }
                s.string(ctx)?;
                skip_fields(s, ctx)?;
                s.u64(ctx)?;
            }
            STDERR_STOP_ACTIVITY => drop(s.u64(ctx)?),
            STDERR_RESULT => {
                s.u64(ctx)?;
                s.u64(ctx)?;
                skip_fields(s, ctx)?;
            }
            STDERR_ERROR if ctx.version.at_least(1, 26) => {
                s.string(ctx)?;
                s.u64(ctx)?;
                s.string(ctx)?;
                let msg = String::from_utf8_lossy(&s.string(ctx)?).into_owned();
                s.u64(ctx)?;
                for _ in 0..s.u64(ctx)? {
                    s.u64(ctx)?;
                    s.string(ctx)?;
                }
                return Ok(Some(msg));
            }
            STDERR_ERROR => {
                let msg = String::from_utf8_lossy(&s.string(ctx)?).into_owned();
                s.u64(ctx)?;
                return Ok(Some(msg));
            }
            STDERR_READ => return Err("STDERR_READ is not handled by the checker".into()),
            other => return Err(format!("unknown logger message {other:#x}")),
        }
    }
}

fn strings(s: &mut Stream<'_>, ctx: &WireCtx) -> Result<Vec<String>, String> {
    Ok(s.decode(ctx, |d, ctx| Vec::<String>::decode(d, ctx))?.0)
}

/// Decodes a recorded connection: `to_daemon` is what the client sent, `to_client` what the
/// daemon sent. Every request and reply must decode and re-encode to its recorded bytes; both
/// streams must be consumed completely.
pub fn check_conversation(to_daemon: &[u8], to_client: &[u8], store_dir: &StoreDir) -> Result<Conversation, String> {
    let mut c = Stream { name: "client stream", bytes: to_daemon, pos: 0 };
    let mut s = Stream { name: "daemon stream", bytes: to_client, pos: 0 };
    let mut ctx = WireCtx::worker(ProtocolVersion::new(1, 38)).with_store_dir(store_dir.clone()).with_limits(Limits::DEFAULT);
    if c.u64(&ctx)? != WORKER_MAGIC_1 || s.u64(&ctx)? != WORKER_MAGIC_2 {
        return Err("bad magic".into());
    }
    let client = ProtocolVersion::from_wire(c.u64(&ctx)?).map_err(|e| e.to_string())?;
    let daemon = ProtocolVersion::from_wire(s.u64(&ctx)?).map_err(|e| e.to_string())?;
    let version = client.min(daemon);
    ctx = ctx.with_version(version);
    let mut features = (Vec::new(), Vec::new());
    if version.at_least(1, 38) {
        features = (strings(&mut c, &ctx)?, strings(&mut s, &ctx)?);
    }
    if version.at_least(1, 14) && c.u64(&ctx)? != 0 {
        c.u64(&ctx)?;
    }
    if version.at_least(1, 11) {
        c.u64(&ctx)?;
    }
    let (info, bytes) = s.decode(&ctx, |d, ctx| ClientHandshakeInfo::decode(d, ctx))?;
    same_bytes("the handshake info", bytes, |out| worker_protocol::WireEncode::encode(&info, out, &ctx))?;
    if let Some(e) = logger(&mut s, &ctx, &mut Vec::new())? {
        return Err(format!("the daemon refused the connection: {e}"));
    }

    let mut exchanges = Vec::new();
    while !c.rest().is_empty() {
        let code = c.u64(&ctx)?;
        let op = Opcode::from_u64(code).map_err(|e| e.to_string())?;
        let (request, bytes) = c.decode(&ctx, |d, ctx| Request::decode(op, d, ctx))?;
        same_bytes(&format!("the {op} request"), bytes, |out| request.encode_body(out, &ctx))?;
        let payload = match request.payload(version) {
            Payload::None => Vec::new(),
            Payload::Framed(_) => c.framed(&ctx)?,
            Payload::InlineNar => c.nar()?,
            Payload::StderrReadPulled(_) => return Err(format!("{op}: STDERR_READ payloads are not handled")),
        };
        let mut written = Vec::new();
        let outcome = match logger(&mut s, &ctx, &mut written)? {
            Some(message) => Outcome::Error(message),
            None if op.reply_data() == ReplyData::NarAfterLast => Outcome::Nar(s.nar()?),
            None => {
                let (response, bytes) = s.decode(&ctx, |d, ctx| Response::decode(op, d, ctx))?;
                same_bytes(&format!("the {op} reply"), bytes, |out| response.encode(out, &ctx))?;
                Outcome::Reply(response)
            }
        };
        exchanges.push(Exchange { request, payload, written, outcome });
    }
    if !s.rest().is_empty() {
        return Err(format!("{} bytes from the daemon left over", s.rest().len()));
    }
    Ok(Conversation { version, features, info, exchanges })
}

/// The operations of some conversations, in order, without `SetOptions`.
pub fn operations(conversations: &[Conversation]) -> Vec<&Exchange> {
    conversations
        .iter()
        .flat_map(|c| &c.exchanges)
        .filter(|e| !matches!(e.request, Request::SetOptions(_)))
        .collect()
}

/// The set of opcodes that occur.
pub fn opcodes(conversations: &[Conversation]) -> BTreeSet<Opcode> {
    conversations.iter().flat_map(|c| &c.exchanges).map(|e| e.request.opcode()).collect()
}
