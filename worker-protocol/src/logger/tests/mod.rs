//! Tests of the logger channel: encodings, limits and downgrades (`encoding`), and the exchanges
//! between both sides over in-memory connections (`exchange`, `pull`).

mod encoding;
mod exchange;
mod pull;

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_bytes, put_u64};
use crate::WireCtx;

/// The versions whose differences matter: before and at activities (1.20), before and at
/// structured errors (1.26), and a few supported ones around.
const VERSIONS: [u8; 9] = [10, 19, 20, 21, 25, 26, 34, 37, 38];

fn v(minor: u8) -> ProtocolVersion {
    ProtocolVersion::new(1, minor)
}

fn ctx(minor: u8) -> WireCtx {
    WireCtx::worker(v(minor))
}

/// Builds wire bytes from `u64`s and byte strings, the way Nix's `Sink <<` writes them.
#[derive(Default)]
struct Wire(BytesMut);

impl Wire {
    fn n(mut self, n: u64) -> Self {
        put_u64(&mut self.0, n);
        self
    }

    fn s(mut self, s: &[u8]) -> Self {
        put_bytes(&mut self.0, s);
        self
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Reads exactly one message from `bytes`.
async fn read_one(bytes: &[u8], ctx: &WireCtx) -> Result<LogMessage, crate::ProtocolError> {
    let mut r = bytes;
    let msg = read_message(&mut r, ctx).await?;
    assert!(r.is_empty(), "{} bytes left after {msg:?}", r.len());
    Ok(msg)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn bytes_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..40), "\\PC{0,30}".prop_map(String::into_bytes)]
}

fn verbosity() -> impl Strategy<Value = Verbosity> {
    proptest::sample::select(Verbosity::ALL.to_vec())
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![any::<u64>().prop_map(Field::Int), bytes_text().prop_map(Field::String)]
}

fn fields() -> impl Strategy<Value = Vec<Field>> {
    proptest::collection::vec(field(), 0..5)
}

fn activity_type() -> impl Strategy<Value = ActivityType> {
    prop_oneof![Just(0u32), 100u32..=112, any::<u32>()].prop_map(ActivityType::from_code)
}

fn result_type() -> impl Strategy<Value = ResultType> {
    prop_oneof![100u32..=108, any::<u32>()].prop_map(ResultType::from_code)
}

fn remote_error() -> impl Strategy<Value = RemoteError> {
    ("\\PC{0,40}", any::<u32>(), verbosity(), proptest::collection::vec("\\PC{0,20}", 0..3))
        .prop_map(|(message, status, level, traces)| RemoteError { message, status, level, traces })
}

fn message() -> impl Strategy<Value = LogMessage> {
    prop_oneof![
        bytes_text().prop_map(LogMessage::Next),
        bytes_text().prop_map(LogMessage::Write),
        any::<u64>().prop_map(|max| LogMessage::Read { max }),
        Just(LogMessage::Last),
        remote_error().prop_map(LogMessage::Error),
        (any::<u64>(), verbosity(), activity_type(), bytes_text(), fields(), any::<u64>()).prop_map(
            |(id, level, kind, text, fields, parent)| LogMessage::StartActivity {
                id: ActivityId(id),
                level,
                kind,
                text,
                fields,
                parent: ActivityId(parent),
            }
        ),
        any::<u64>().prop_map(|id| LogMessage::StopActivity { id: ActivityId(id) }),
        (any::<u64>(), result_type(), fields()).prop_map(|(id, kind, fields)| LogMessage::Result {
            id: ActivityId(id),
            kind,
            fields
        }),
    ]
}

/// What a message looks like after a trip through the wire at `version`: errors lose what
/// their form there does not carry.
fn as_received(msg: &LogMessage, version: ProtocolVersion) -> LogMessage {
    match msg {
        LogMessage::Error(e) if version.at_least(1, 26) => LogMessage::Error(RemoteError { status: 1, ..e.clone() }),
        LogMessage::Error(e) => LogMessage::Error(RemoteError::new(e.full_message()).with_status(e.status)),
        other => other.clone(),
    }
}
