//! The corpus: hostile byte sequences, each with why it is there and the typed error the server
//! must end with. Generated in code, so every byte is explained next to where it is made.
//!
//! Cases that start with `ok_` are controls: correct conversations (some of them trickled a
//! byte at a time) that must decode completely, so that the failing cases fail for the reason
//! they claim and not because the harness is broken.

use bytes::BytesMut;
use nix_formats::derived_path::DerivedPathError;
use nix_formats::store_path::StoreDir;
use worker_protocol::ops::request::add::AddBuildLog;
use worker_protocol::ops::request::query::{IsValidPath, QueryValidPaths};
use worker_protocol::ops::Request;
use worker_protocol::version::{SERVE_MAGIC_1, WORKER_MAGIC_1};
use worker_protocol::{Limits, ProtocolError, ProtocolVersion, WireCtx};

use super::client::{Delivery, Ending, Script, Start};

/// What the server must end with.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// The client closed cleanly after this many complete requests.
    Closed {
        /// How many requests were decoded.
        requests: usize,
    },
    /// The server failed with an error matching `error`, after this many complete requests.
    Fails {
        /// How many requests were decoded first.
        requests: usize,
        /// The pattern, for messages.
        error: &'static str,
        /// Whether an error matches the pattern.
        check: fn(&ProtocolError) -> bool,
    },
}

macro_rules! fails {
    ($requests:expr, $pattern:pat $(if $guard:expr)?) => {
        Expect::Fails {
            requests: $requests,
            error: stringify!($pattern $(if $guard)?),
            check: |e| matches!(e, $pattern $(if $guard)?),
        }
    };
}

/// One hostile conversation.
#[derive(Debug, Clone)]
pub struct Case {
    /// A short name.
    pub name: &'static str,
    /// What the client does.
    pub script: Script,
    /// How the server must end.
    pub expect: Expect,
    /// The most bytes the case may allocate in total.
    pub memory_limit: usize,
}

/// The most bytes a case may allocate in total, unless it says otherwise: far below the 60 MiB
/// and 2^62 lengths, the 2^20 and 2^40 counts and the 2^63 frames the corpus announces.
pub const MEMORY_LIMIT: usize = 4 << 20;

/// The version every case after a handshake negotiates, unless it says otherwise.
pub const MINOR: u8 = 38;

/// A valid store path.
pub const PATH: &str = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello";
/// A valid derivation path.
pub const DRV: &str = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv";

/// Opcodes used by hand below.
const OP_IS_VALID_PATH: u64 = 1;
const OP_BUILD_PATHS: u64 = 9;
const OP_QUERY_VALID_PATHS: u64 = 31;
const OP_ADD_BUILD_LOG: u64 = 45;
const OP_ADD_PERM_ROOT: u64 = 47;

/// Little-endian wire numbers.
fn num(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A byte string as the wire carries it: length, bytes, zero padding to a multiple of 8.
fn string(data: &[u8]) -> Vec<u8> {
    let mut out = num(&[data.len() as u64]);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(8), 0);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A correct client handshake offering `1.minor`, up to and including the obsolete settings.
fn hello(minor: u8) -> Vec<u8> {
    let mut out = num(&[WORKER_MAGIC_1, ProtocolVersion::new(1, minor).to_wire()]);
    if minor >= 38 {
        out.extend(num(&[0])); // no features
    }
    out.extend(num(&[0, 0])); // no CPU affinity, no reserved space
    out
}

fn store_path(text: &str) -> nix_formats::store_path::StorePath {
    StoreDir::default().parse(text).expect("a valid store path")
}

/// `request` encoded at [`MINOR`], opcode first.
fn request(request: Request) -> Vec<u8> {
    let mut out = BytesMut::new();
    request.encode(&mut out, &WireCtx::worker(ProtocolVersion::new(1, MINOR))).expect("encodable");
    out.to_vec()
}

fn is_valid_path() -> Vec<u8> {
    request(IsValidPath { path: store_path(PATH) }.into())
}

/// `QueryValidPaths` for `n` distinct paths: a message of about `n * 64` bytes of small items.
fn query_valid_paths(n: usize) -> Vec<u8> {
    let paths = (0..n).map(|i| store_path(&format!("{PATH}-{i}"))).collect();
    request(QueryValidPaths { paths, substitute: false }.into())
}

/// `AddBuildLog`'s fields; a framed log must follow.
fn add_build_log() -> Vec<u8> {
    let drv_path = store_path(DRV);
    request(AddBuildLog { drv_path }.into())
}

/// A framed stream of `frames`, each a length and that many bytes, then the end marker.
fn framed(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        out.extend(num(&[frame.len() as u64]));
        out.extend_from_slice(frame);
    }
    out.extend(num(&[0]));
    out
}

fn raw(bytes: Vec<u8>) -> Script {
    Script { start: Start::Raw, bytes, delivery: Delivery::Whole, ending: Ending::HalfClose, limits: Limits::DEFAULT }
}

fn after_handshake(bytes: Vec<u8>) -> Script {
    Script { start: Start::AfterHandshake(MINOR), ..raw(bytes) }
}

impl Script {
    fn trickle(self, n: usize) -> Self {
        Self { delivery: Delivery::Trickle(n), ..self }
    }

    fn ending(self, ending: Ending) -> Self {
        Self { ending, ..self }
    }

    fn limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    fn start(self, start: Start) -> Self {
        Self { start, ..self }
    }
}

fn case(name: &'static str, script: Script, expect: Expect) -> Case {
    Case { name, script, expect, memory_limit: MEMORY_LIMIT }
}

impl Case {
    fn memory_limit(self, memory_limit: usize) -> Self {
        Self { memory_limit, ..self }
    }
}

/// 2^62: a string length no limit allows.
const HUGE_STRING: u64 = 1 << 62;
/// 2^40: a collection count no limit allows.
const HUGE_COUNT: u64 = 1 << 40;
/// 2^63: a frame length no limit allows.
const HUGE_FRAME: u64 = 1 << 63;
/// 60 MiB: within the default limits, so the reader must wait for the bytes instead of
/// refusing, and must not set aside memory for bytes that have not come.
const LARGE_BUT_ALLOWED: u64 = 60 << 20;

/// The first eight bytes of an HTTP request, read as the magic number.
const HTTP_GET: u64 = u64::from_le_bytes(*b"GET / HT");

/// Cases that attack the handshake.
pub fn handshake_cases() -> Vec<Case> {
    let v38 = ProtocolVersion::new(1, 38).to_wire();
    vec![
        case("ok_handshake_trickled", raw(cat(&[&hello(MINOR), &is_valid_path()])).trickle(1), Expect::Closed { requests: 1 }),
        case("ok_handshake_1_21", raw(cat(&[&hello(21), &is_valid_path()])), Expect::Closed { requests: 1 }),
        // Connects and closes at once.
        case("nothing_then_close", raw(vec![]), fails!(0, ProtocolError::UnexpectedEof)),
        // Connects and never says anything: the server's idle bound ends it.
        case(
            "silent_client",
            raw(vec![]).ending(Ending::HoldOpen),
            fails!(0, ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        ),
        // Stops talking after a valid opening, holding the connection.
        case(
            "silent_after_magic",
            raw(num(&[WORKER_MAGIC_1])).ending(Ending::HoldOpen),
            fails!(0, ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        ),
        case("truncated_magic", raw(num(&[WORKER_MAGIC_1])[..3].to_vec()), fails!(0, ProtocolError::UnexpectedEof)),
        case(
            "wrong_magic_http",
            raw(b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            fails!(0, ProtocolError::BadMagic { expected: WORKER_MAGIC_1, got: HTTP_GET }),
        ),
        case(
            "serve_magic_on_worker_socket",
            raw(num(&[SERVE_MAGIC_1, 0x0207])),
            fails!(0, ProtocolError::BadMagic { expected: WORKER_MAGIC_1, got: SERVE_MAGIC_1 }),
        ),
        case("truncated_version", raw(cat(&[&num(&[WORKER_MAGIC_1]), &[0x26, 0x01, 0]])), fails!(0, ProtocolError::UnexpectedEof)),
        case(
            "major_version_2",
            raw(num(&[WORKER_MAGIC_1, 0x0226])),
            fails!(0, ProtocolError::UnsupportedVersion { version, .. } if version.major() == 2),
        ),
        case(
            "major_version_0",
            raw(num(&[WORKER_MAGIC_1, 0x0026])),
            fails!(0, ProtocolError::UnsupportedVersion { version, .. } if version.major() == 0),
        ),
        case(
            "version_too_old",
            raw(num(&[WORKER_MAGIC_1, 0x0114])),
            fails!(0, ProtocolError::UnsupportedVersion { version, .. } if *version == ProtocolVersion::new(1, 20)),
        ),
        case(
            "version_beyond_32_bits",
            raw(num(&[WORKER_MAGIC_1, 1 << 40 | 0x0126])),
            fails!(0, ProtocolError::IntegerTooLarge { what: "protocol version", .. }),
        ),
        case(
            "feature_count_2_40",
            raw(num(&[WORKER_MAGIC_1, v38, HUGE_COUNT])),
            fails!(0, ProtocolError::TooManyItems { count: HUGE_COUNT, max: 1024 }),
        ),
        case(
            "feature_name_length_2_62",
            raw(num(&[WORKER_MAGIC_1, v38, 1, HUGE_STRING])),
            fails!(0, ProtocolError::StringTooLong { len: HUGE_STRING, max: 1024 }),
        ),
        case(
            "feature_name_non_zero_padding",
            raw(cat(&[&num(&[WORKER_MAGIC_1, v38, 1, 3]), b"abc\0\0\0\0\x01"])),
            fails!(0, ProtocolError::NonZeroPadding),
        ),
        case(
            "feature_name_truncated",
            raw(cat(&[&num(&[WORKER_MAGIC_1, v38, 1, 3]), b"ab"])),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "truncated_settings",
            raw(cat(&[&num(&[WORKER_MAGIC_1, v38, 0]), &[0, 0, 0, 0]])),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
    ]
}

/// Cases that attack the requests after a correct handshake.
pub fn request_cases() -> Vec<Case> {
    let path = PATH.as_bytes();
    // From 1.30 a derived path travels in the `!` form; each `!out` is one more level of a
    // dynamic derivation's chain, limited to `Limits::max_depth` (16).
    let deep = format!("{DRV}{}", "!out".repeat(40));
    vec![
        case("ok_two_requests", after_handshake(cat(&[&is_valid_path(), &query_valid_paths(3)])), Expect::Closed { requests: 2 }),
        case("ok_large_request_trickled", after_handshake(query_valid_paths(200)).trickle(1), Expect::Closed { requests: 1 }),
        // 2000 paths (140 KiB) arriving 8 bytes per read: the reader must not re-parse the
        // whole buffer for every item that comes in (it once did: 5000 paths took longer than
        // the 2 s bound). It decodes the growing buffer again after each wait, a few dozen
        // times here, and every attempt allocates its own set of paths, freed when it stops
        // short: so this control's total, not its peak, is some 12 MB.
        case("ok_many_paths_trickled_8_bytes", after_handshake(query_valid_paths(2000)).trickle(8), Expect::Closed { requests: 1 })
            .memory_limit(64 << 20),
        case("ok_at_1_21", after_handshake(is_valid_path()).start(Start::AfterHandshake(21)), Expect::Closed { requests: 1 }),
        case("unknown_opcode_9999", after_handshake(num(&[9999])), fails!(0, ProtocolError::UnknownOpcode(9999))),
        case("unknown_opcode_0", after_handshake(num(&[0])), fails!(0, ProtocolError::UnknownOpcode(0))),
        case(
            "unknown_opcode_beyond_32_bits",
            after_handshake(num(&[1 << 32 | OP_IS_VALID_PATH])),
            fails!(0, ProtocolError::UnknownOpcode(0x1_0000_0001)),
        ),
        case(
            "unknown_opcode_after_good_request",
            after_handshake(cat(&[&is_valid_path(), &num(&[48])])),
            fails!(1, ProtocolError::UnknownOpcode(48)),
        ),
        case("removed_opcode_24", after_handshake(num(&[24])), fails!(0, ProtocolError::RemovedOperation(24))),
        case("removed_opcode_25", after_handshake(num(&[25])), fails!(0, ProtocolError::RemovedOperation(25))),
        case("truncated_opcode", after_handshake(vec![1, 0, 0]), fails!(0, ProtocolError::UnexpectedEof)),
        case(
            "truncated_string",
            after_handshake(is_valid_path()[..8 + 8 + 20].to_vec()),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "truncated_padding",
            after_handshake(is_valid_path()[..is_valid_path().len() - 3].to_vec()),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "string_length_2_62",
            after_handshake(num(&[OP_IS_VALID_PATH, HUGE_STRING])),
            fails!(0, ProtocolError::StringTooLong { len: HUGE_STRING, .. }),
        ),
        case(
            "string_length_u64_max",
            after_handshake(num(&[OP_IS_VALID_PATH, u64::MAX])),
            fails!(0, ProtocolError::StringTooLong { len: u64::MAX, .. }),
        ),
        // Within the limits: the server has to wait for the bytes, and must not reserve them.
        case(
            "string_length_60_mib_then_eof",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH, LARGE_BUT_ALLOWED]), b"/nix/sto"])),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "collection_count_2_40",
            after_handshake(num(&[OP_QUERY_VALID_PATHS, HUGE_COUNT])),
            fails!(0, ProtocolError::TooManyItems { count: HUGE_COUNT, .. }),
        ),
        case(
            "collection_count_at_limit_then_eof",
            after_handshake(cat(&[&num(&[OP_QUERY_VALID_PATHS, 1 << 20]), &string(path)])),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "message_over_the_servers_limit",
            after_handshake(query_valid_paths(2000)).limits(Limits { max_message_len: 64 << 10, ..Limits::DEFAULT }),
            fails!(0, ProtocolError::MessageTooLarge { max: 65536 }),
        ),
        case(
            "non_zero_padding",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH, path.len() as u64]), path, &[0, 0, 0, 0, 0, 0, 0x80]])),
            fails!(0, ProtocolError::NonZeroPadding),
        ),
        case(
            "store_path_outside_the_store",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH]), &string(b"/etc/passwd")])),
            fails!(0, ProtocolError::BadStorePath(_)),
        ),
        case(
            "store_path_bad_hash_part",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH]), &string(b"/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x")])),
            fails!(0, ProtocolError::BadStorePath(_)),
        ),
        case(
            "store_path_bad_name",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH]), &string(format!("{PATH}/../../etc").as_bytes())])),
            fails!(0, ProtocolError::BadStorePath(_)),
        ),
        case(
            "store_path_dot_dot_name",
            after_handshake(cat(&[&num(&[OP_IS_VALID_PATH]), &string(b"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-..")])),
            fails!(0, ProtocolError::BadStorePath(_)),
        ),
        case(
            "string_not_utf8",
            after_handshake(cat(&[&num(&[OP_ADD_PERM_ROOT]), &string(path), &string(b"/root/\xff\xfe")])),
            fails!(0, ProtocolError::InvalidUtf8),
        ),
        case(
            "flag_not_a_number_nix_reads",
            after_handshake(cat(&[&num(&[OP_QUERY_VALID_PATHS, 1]), &string(path), &num(&[1 << 33])])),
            fails!(0, ProtocolError::IntegerTooLarge { .. }),
        ),
        case(
            "derived_path_too_deep",
            after_handshake(cat(&[&num(&[OP_BUILD_PATHS, 1]), &string(deep.as_bytes()), &num(&[0])])),
            fails!(0, ProtocolError::BadDerivedPath(DerivedPathError::TooDeep { max: 16 })),
        ),
        case(
            "disconnect_mid_request",
            after_handshake(is_valid_path()[..30].to_vec()).ending(Ending::Disconnect),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "disconnect_mid_request_after_two",
            after_handshake(cat(&[&is_valid_path(), &is_valid_path(), &query_valid_paths(5)[..100]])).ending(Ending::Disconnect),
            fails!(2, ProtocolError::UnexpectedEof),
        ),
        case(
            "silent_mid_request",
            after_handshake(is_valid_path()[..30].to_vec()).ending(Ending::HoldOpen),
            fails!(0, ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        ),
        case(
            "string_length_2_62_trickled",
            after_handshake(num(&[OP_IS_VALID_PATH, HUGE_STRING])).trickle(1),
            fails!(0, ProtocolError::StringTooLong { len: HUGE_STRING, .. }),
        ),
        case(
            "truncated_request_trickled",
            after_handshake(query_valid_paths(20)[..1000].to_vec()).trickle(1),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
    ]
}

/// Cases that attack the framed stream after `AddBuildLog`.
pub fn framed_cases() -> Vec<Case> {
    let fields = add_build_log();
    let log = |rest: &[u8]| after_handshake(cat(&[&fields, rest]));
    vec![
        case("ok_framed", log(&framed(&[b"line 1\n", b"line 2\n", &[b'x'; 1000]])), Expect::Closed { requests: 1 }),
        case(
            "ok_framed_trickled_then_more",
            after_handshake(cat(&[&fields, &framed(&[b"abc", &[7; 300]]), &is_valid_path()])).trickle(1),
            Expect::Closed { requests: 2 },
        ),
        case(
            "frame_length_2_63",
            log(&num(&[HUGE_FRAME])),
            fails!(0, ProtocolError::FrameTooLarge { len: HUGE_FRAME, max: 67108864 }),
        ),
        case(
            "frame_length_2_63_after_good_frames",
            log(&cat(&[&num(&[5]), b"hello", &num(&[HUGE_FRAME])])),
            fails!(0, ProtocolError::FrameTooLarge { len: HUGE_FRAME, .. }),
        ),
        case("frame_length_60_mib_then_eof", log(&cat(&[&num(&[LARGE_BUT_ALLOWED]), &[1; 4096]])), fails!(0, ProtocolError::UnexpectedEof)),
        case("truncated_frame_header", log(&[5, 0, 0, 0]), fails!(0, ProtocolError::UnexpectedEof)),
        case("truncated_frame_data", log(&cat(&[&num(&[100]), &[b'x'; 50]])), fails!(0, ProtocolError::UnexpectedEof)),
        case("missing_end_marker", log(&cat(&[&num(&[3]), b"abc"])), fails!(0, ProtocolError::UnexpectedEof)),
        case(
            "disconnect_mid_frame",
            log(&cat(&[&num(&[100]), &[b'x'; 50]])).ending(Ending::Disconnect),
            fails!(0, ProtocolError::UnexpectedEof),
        ),
        case(
            "silent_mid_frame",
            log(&cat(&[&num(&[100]), &[b'x'; 50]])).ending(Ending::HoldOpen),
            fails!(0, ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        ),
        case(
            "frame_length_2_63_trickled",
            log(&num(&[HUGE_FRAME])).trickle(1),
            fails!(0, ProtocolError::FrameTooLarge { len: HUGE_FRAME, .. }),
        ),
        case(
            "framed_request_with_bad_path",
            after_handshake(cat(&[&num(&[OP_ADD_BUILD_LOG]), &string(b"not a base name/"), &framed(&[b"x"])])),
            fails!(0, ProtocolError::BadStorePath(_)),
        ),
    ]
}

/// The whole corpus.
pub fn all() -> Vec<Case> {
    [handshake_cases(), request_cases(), framed_cases()].concat()
}
