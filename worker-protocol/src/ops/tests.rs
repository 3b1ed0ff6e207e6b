//! Round trips of every request and reply at every version from 1.21 to 1.38, byte layouts of
//! the forms that changed, and typed errors for unknown, removed and truncated messages.

use std::fmt::Debug;

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::opcode::Opcode;
use super::request::add::*;
use super::request::query::*;
use super::request::Request;
use super::response::{AddToStoreReply, RealisationReply, Response};
use super::strategies::*;
use crate::error::ProtocolError;
use crate::ser::WireCtx;
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

const CASES_PER_OP_AND_VERSION: u32 = 12;

fn ctx(minor: u8) -> WireCtx {
    WireCtx::worker(ProtocolVersion::new(1, minor))
}

fn live_ops() -> impl Iterator<Item = Opcode> {
    Opcode::ALL.iter().copied().filter(|op| !op.is_removed())
}

fn fail(e: impl ToString) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Encodes with `encode`, decodes with `decode` to `expected` using every byte, re-encodes the
/// result to the same bytes, and checks that every strict prefix asks for more bytes, honestly.
fn round_trip<T: PartialEq + Debug>(
    value: &T,
    expected: &T,
    encode: impl Fn(&T, &mut BytesMut) -> Result<(), ProtocolError>,
    decode: impl Fn(&mut Decoder<'_>) -> Result<T, DecodeError>,
) -> Result<(), TestCaseError> {
    let mut bytes = BytesMut::new();
    encode(value, &mut bytes).map_err(fail)?;
    let mut d = Decoder::new(&bytes, crate::Limits::DEFAULT);
    let decoded = decode(&mut d).map_err(fail)?;
    prop_assert_eq!(d.remaining().len(), 0, "bytes left over");
    prop_assert_eq!(&decoded, expected);
    let mut again = BytesMut::new();
    encode(&decoded, &mut again).map_err(fail)?;
    prop_assert_eq!(&again[..], &bytes[..]);
    for n in 0..bytes.len() {
        match decode(&mut Decoder::new(&bytes[..n], crate::Limits::DEFAULT)) {
            Err(DecodeError::Incomplete { needed }) => prop_assert!(needed >= 1 && n + needed <= bytes.len()),
            other => prop_assert!(false, "prefix of {} bytes gave {:?}", n, other.map(|_| ())),
        }
    }
    Ok(())
}

#[test]
fn every_request_at_every_version() {
    for minor in 21..=38 {
        let ctx = ctx(minor);
        for op in live_ops() {
            let mut runner = TestRunner::new(Config { cases: CASES_PER_OP_AND_VERSION, ..Config::default() });
            runner
                .run(&request_for(op, minor), |req| {
                    prop_assert_eq!(req.opcode(), op);
                    let expected = project_request(&req, minor);
                    round_trip(&req, &expected, |r, out| r.encode(out, &ctx), |d| Request::decode_message(d, &ctx))?;
                    // The body alone, after the opcode was read.
                    round_trip(&req, &expected, |r, out| r.encode_body(out, &ctx), |d| Request::decode(op, d, &ctx))
                })
                .unwrap_or_else(|e| panic!("{op} at 1.{minor}: {e}"));
        }
    }
}

#[test]
fn every_response_at_every_version() {
    for minor in 21..=38 {
        let ctx = ctx(minor);
        for op in live_ops() {
            let mut runner = TestRunner::new(Config { cases: CASES_PER_OP_AND_VERSION, ..Config::default() });
            runner
                .run(&response_for(op, minor), |resp| {
                    prop_assert_eq!(resp.opcode(), op);
                    let expected = project_response(&resp, minor);
                    round_trip(&resp, &expected, |r, out| r.encode(out, &ctx), |d| Response::decode(op, d, &ctx))
                })
                .unwrap_or_else(|e| panic!("{op} at 1.{minor}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes after any opcode: a request, a typed error or "more bytes", never a panic.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), minor in 21u8..=38) {
        let ctx = ctx(minor);
        for op in Opcode::ALL {
            let _ = Request::decode(*op, &mut Decoder::new(&bytes, ctx.limits), &ctx);
            let _ = Response::decode(*op, &mut Decoder::new(&bytes, ctx.limits), &ctx);
        }
        let _ = Request::decode_message(&mut Decoder::new(&bytes, ctx.limits), &ctx);
    }
}

fn decode_request(bytes: &[u8], minor: u8) -> Result<Request, ProtocolError> {
    let ctx = ctx(minor);
    let mut d = Decoder::new(bytes, ctx.limits);
    let r = Request::decode_message(&mut d, &ctx).map_err(DecodeError::at_eof)?;
    match d.remaining().len() {
        0 => Ok(r),
        n => Err(ProtocolError::TrailingBytes(n)),
    }
}

#[test]
fn unknown_removed_and_truncated_requests() {
    for code in [0u64, 2, 15, 17, 48, 1 << 40] {
        let bytes = code.to_le_bytes();
        assert!(matches!(decode_request(&bytes, 38), Err(ProtocolError::UnknownOpcode(c)) if c == code));
    }
    for code in [24u64, 25] {
        assert!(matches!(decode_request(&code.to_le_bytes(), 38), Err(ProtocolError::RemovedOperation(c)) if c == code));
    }
    // Cut inside the opcode, inside a string, inside a count.
    let mut msg = BytesMut::new();
    let req: Request = IsValidPath { path: sample_path("foo") }.into();
    req.encode(&mut msg, &ctx(38)).unwrap();
    for n in [0, 5, 8, 12, 20, msg.len() - 1] {
        assert!(matches!(decode_request(&msg[..n], 38), Err(ProtocolError::UnexpectedEof)), "{n}");
    }
    assert_eq!(decode_request(&msg, 38).unwrap(), req);
    // A store path outside the store, a bad flag, a bad build mode.
    let mut bad = BytesMut::new();
    put_u64(&mut bad, 1);
    put_str(&mut bad, "/tmp/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo");
    assert!(matches!(decode_request(&bad, 38), Err(ProtocolError::BadStorePath(_))));
    let mut bad = BytesMut::new();
    put_u64(&mut bad, Opcode::VerifyStore.code());
    put_u64(&mut bad, 2);
    put_u64(&mut bad, 0);
    assert!(matches!(decode_request(&bad, 38), Err(ProtocolError::BadValue { .. })));
    let mut bad = BytesMut::new();
    put_u64(&mut bad, Opcode::BuildPathsWithResults.code());
    put_u64(&mut bad, 0);
    put_u64(&mut bad, 3);
    assert!(matches!(decode_request(&bad, 38), Err(ProtocolError::BadValue { what: "build mode", .. })));
    // A count beyond the limit fails before any element is awaited.
    let mut huge = BytesMut::new();
    put_u64(&mut huge, Opcode::QueryValidPaths.code());
    put_u64(&mut huge, u64::MAX);
    assert!(matches!(decode_request(&huge, 38), Err(ProtocolError::TooManyItems { .. })));
    assert!(matches!(
        Response::decode(Opcode::ClearFailedPaths, &mut Decoder::new(&[], crate::Limits::DEFAULT), &ctx(38)),
        Err(DecodeError::Invalid(ProtocolError::RemovedOperation(25)))
    ));
}

fn sample_path(name: &str) -> nix_formats::store_path::StorePath {
    nix_formats::store_path::StorePath::from_base_name(&format!("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-{name}")).unwrap()
}

fn words(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn layouts_that_change_with_the_version() {
    // AddToStore: framed form from 1.25, legacy form before.
    let framed: Request = AddToStore::Framed(AddToStoreFramed {
        name: "x".into(),
        method: CaMethodAlgo::parse("fixed:r:sha256").unwrap(),
        references: Default::default(),
        repair: true,
    })
    .into();
    let mut out = BytesMut::new();
    framed.encode(&mut out, &ctx(25)).unwrap();
    let mut expected = BytesMut::new();
    put_u64(&mut expected, 7);
    put_str(&mut expected, "x");
    put_str(&mut expected, "fixed:r:sha256");
    put_u64(&mut expected, 0);
    put_u64(&mut expected, 1);
    assert_eq!(out, expected);
    assert!(matches!(framed.encode(&mut BytesMut::new(), &ctx(24)), Err(ProtocolError::Unrepresentable { .. })));
    let legacy = decode_request(&{
        let mut b = BytesMut::new();
        put_u64(&mut b, 7);
        put_str(&mut b, "x");
        put_u64(&mut b, 0);
        put_u64(&mut b, 1);
        put_str(&mut b, "sha256");
        b
    }, 24)
    .unwrap();
    let Request::AddToStore(AddToStore::Legacy(l)) = &legacy else { panic!("{legacy:?}") };
    assert_eq!(l.method(), CaMethodAlgo::parse("fixed:r:sha256").unwrap());
    assert_eq!(legacy.payload(ProtocolVersion::new(1, 24)), super::Payload::InlineNar);

    // QueryValidPaths: the substitute flag from 1.27.
    let q: Request = QueryValidPaths { paths: Default::default(), substitute: true }.into();
    let mut a = BytesMut::new();
    q.encode(&mut a, &ctx(26)).unwrap();
    assert_eq!(words(&a), [31, 0]);
    let mut b = BytesMut::new();
    q.encode(&mut b, &ctx(27)).unwrap();
    assert_eq!(words(&b), [31, 0, 1]);

    // AddBuildLog and RegisterDrvOutput before 1.31 carry base names, not full paths.
    let log: Request = AddBuildLog { drv_path: sample_path("a.drv") }.into();
    let mut out = BytesMut::new();
    log.encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(&out[16..16 + 39], b"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-a.drv\0");
    let id = nix_formats::realisation::DrvOutput::parse(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!out",
    )
    .unwrap();
    let reg: Request = RegisterDrvOutput {
        realisation: nix_formats::realisation::Realisation::new(id.clone(), sample_path("out")),
    }
    .into();
    let mut out = BytesMut::new();
    reg.encode(&mut out, &ctx(30)).unwrap();
    let mut expected = BytesMut::new();
    put_u64(&mut expected, 42);
    put_str(&mut expected, &id.to_string());
    put_str(&mut expected, "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-out");
    assert_eq!(out, expected);
    let mut out = BytesMut::new();
    reg.encode(&mut out, &ctx(31)).unwrap();
    assert!(std::str::from_utf8(&out[16..]).unwrap().contains("\"outPath\""));

    // CollectGarbage: three obsolete numbers at the end.
    let gc: Request = super::request::gc::CollectGarbage {
        action: super::request::gc::GcAction::DeleteSpecific,
        paths_to_delete: Default::default(),
        ignore_liveness: false,
        max_freed: u64::MAX,
    }
    .into();
    let mut out = BytesMut::new();
    gc.encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(words(&out), [20, 3, 0, 0, u64::MAX, 0, 0, 0]);
}

#[test]
fn reply_layouts() {
    let info = crate::types::UnkeyedValidPathInfo::new(nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, b""));
    let mut out = BytesMut::new();
    Response::QueryPathInfo(Some(info.clone())).encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(&out[..8], &1u64.to_le_bytes());
    let mut out = BytesMut::new();
    Response::QueryPathInfo(None).encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(words(&out), [0]);
    assert!(matches!(
        Response::QueryPathInfo(None).encode(&mut BytesMut::new(), &ctx(16)),
        Err(ProtocolError::Unrepresentable { .. })
    ));
    let reply = Response::AddToStore(AddToStoreReply::Info(info.with_path(sample_path("x"))));
    let mut out = BytesMut::new();
    reply.encode(&mut out, &ctx(24)).unwrap();
    let mut expected = BytesMut::new();
    put_str(&mut expected, "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-x");
    assert_eq!(out, expected);
    assert!(matches!(
        Response::AddToStore(AddToStoreReply::Path(sample_path("x"))).encode(&mut BytesMut::new(), &ctx(25)),
        Err(ProtocolError::Unrepresentable { .. })
    ));
    assert!(matches!(
        Response::QueryRealisation(RealisationReply::Paths(Default::default())).encode(&mut BytesMut::new(), &ctx(31)),
        Err(ProtocolError::Unrepresentable { .. })
    ));
    // Acknowledgements are `1`; replies with nothing are empty.
    let mut out = BytesMut::new();
    Response::BuildPaths.encode(&mut out, &ctx(38)).unwrap();
    Response::SetOptions.encode(&mut out, &ctx(38)).unwrap();
    Response::AddToStoreNar.encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(words(&out), [1]);
    // FindRoots: the link count, then link and target per link.
    let roots = [(sample_path("t"), ["/a".to_owned(), "/b".to_owned()].into())].into();
    let mut out = BytesMut::new();
    Response::FindRoots(roots).encode(&mut out, &ctx(38)).unwrap();
    assert_eq!(&out[..8], &2u64.to_le_bytes());
    // Nix's client reads flags as any non-zero number.
    let r = Response::decode(Opcode::IsValidPath, &mut Decoder::new(&5u64.to_le_bytes(), crate::Limits::DEFAULT), &ctx(38));
    assert_eq!(r.unwrap(), Response::IsValidPath(true));
}

#[test]
fn payloads() {
    use super::payload::{Content, Payload};
    let v = ProtocolVersion::new(1, 38);
    let add = |method| -> Request {
        AddToStore::Framed(AddToStoreFramed {
            name: "x".into(),
            method: CaMethodAlgo::parse(method).unwrap(),
            references: Default::default(),
            repair: false,
        })
        .into()
    };
    assert_eq!(add("text:sha256").payload(v), Payload::Framed(Content::FileContents));
    assert_eq!(add("fixed:sha1").payload(v), Payload::Framed(Content::FileContents));
    assert_eq!(add("fixed:r:sha256").payload(v), Payload::Framed(Content::Nar));
    let multi: Request = AddMultipleToStore { repair: false, dont_check_sigs: false }.into();
    assert_eq!(multi.payload(v), Payload::Framed(Content::MultiplePaths));
    assert_eq!(Request::from(ImportPaths {}).payload(v), Payload::StderrReadPulled(Content::ExportedPaths));
    assert_eq!(Request::from(AddBuildLog { drv_path: sample_path("a.drv") }).payload(v), Payload::Framed(Content::BuildLog));
    assert_eq!(Request::from(IsValidPath { path: sample_path("a") }).payload(v), Payload::None);
    assert_eq!(Opcode::NarFromPath.reply_data(), super::ReplyData::NarAfterLast);
    assert_eq!(Opcode::ExportPath.reply_data(), super::ReplyData::StderrWrite);
    assert_eq!(Opcode::QueryPathInfo.reply_data(), super::ReplyData::None);
}

/// Reading from a connection: the request's fields are consumed, the framed payload after them
/// is left for the caller.
#[tokio::test]
async fn read_leaves_the_payload() {
    use tokio::io::AsyncReadExt;
    let ctx = ctx(38);
    let log: Request = AddBuildLog { drv_path: sample_path("a.drv") }.into();
    let mut bytes = BytesMut::new();
    log.encode(&mut bytes, &ctx).unwrap();
    bytes.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, b'l', b'o', b'g', 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut r = crate::wire::WireReader::new(&bytes[..]);
    let op = Opcode::from_u64(r.read_value::<u64>(&ctx).await.unwrap()).unwrap();
    assert_eq!(Request::read(op, &mut r, &ctx).await.unwrap(), log);
    let mut framed = crate::framed::FramedReader::new(&mut r, 1024);
    let mut log_text = Vec::new();
    framed.read_to_end(&mut log_text).await.unwrap();
    assert_eq!(log_text, b"log");
}

/// Seeds for the fuzz targets in `fuzz/` (`worker_request`, `worker_response`, `worker_logger`),
/// in their input forms: a version selector byte (`minor - 21` for the operations, `minor - 10`
/// for the logger), an opcode selector byte (the index in [`Opcode::ALL`], or 255 for a whole
/// request message), then the bytes. Each seed is checked to decode as the target reads it; with
/// `WORKER_FUZZ_SEEDS_DIR` set, they are also written under it, one directory per target
/// (`fuzz/README.md` says how the recorded runs used them).
#[test]
fn fuzz_seeds() {
    use crate::logger::{read_message, ActivityId, ActivityType, Field, LogMessage, RemoteError, ResultType, Verbosity};
    use proptest::strategy::ValueTree;

    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let mut runner = TestRunner::deterministic();
    for minor in 21u8..=38 {
        let ctx = ctx(minor);
        let selector = minor - 21;
        for (index, op) in Opcode::ALL.iter().enumerate().filter(|(_, op)| !op.is_removed()) {
            let req = request_for(*op, minor).new_tree(&mut runner).unwrap().current();
            let mut body = BytesMut::new();
            req.encode_body(&mut body, &ctx).unwrap();
            assert_eq!(Request::decode(*op, &mut Decoder::new(&body, ctx.limits), &ctx).unwrap(), project_request(&req, minor));
            seeds.push(("worker_request", format!("{minor}-{index}"), [&[selector, index as u8][..], &body].concat()));
            let mut whole = BytesMut::new();
            req.encode(&mut whole, &ctx).unwrap();
            seeds.push(("worker_request", format!("{minor}-{index}-message"), [&[selector, 255][..], &whole].concat()));
            let resp = response_for(*op, minor).new_tree(&mut runner).unwrap().current();
            let mut body = BytesMut::new();
            resp.encode(&mut body, &ctx).unwrap();
            assert_eq!(Response::decode(*op, &mut Decoder::new(&body, ctx.limits), &ctx).unwrap(), project_response(&resp, minor));
            seeds.push(("worker_response", format!("{minor}-{index}"), [&[selector, index as u8][..], &body].concat()));
        }
    }
    let messages = [
        LogMessage::Next(b"building '/nix/store/...'\n".to_vec()),
        LogMessage::Write(b"\x00\x01data".to_vec()),
        LogMessage::Read { max: 32768 },
        LogMessage::Last,
        LogMessage::Error(RemoteError::new("boom").with_status(100).with_trace("while evaluating")),
        LogMessage::StartActivity {
            id: ActivityId(7),
            level: Verbosity::Info,
            kind: ActivityType::Build,
            text: b"building foo".to_vec(),
            fields: vec![Field::Int(42), Field::String(b"field".to_vec())],
            parent: ActivityId::NONE,
        },
        LogMessage::StopActivity { id: ActivityId(7) },
        LogMessage::Result { id: ActivityId(7), kind: ResultType::BuildLogLine, fields: vec![Field::String(b"line".to_vec())] },
    ];
    for minor in [15u8, 20, 26, 38] {
        let version = ProtocolVersion::new(1, minor);
        let ctx = ctx(minor);
        for (i, msg) in messages.iter().enumerate().filter(|(_, m)| m.exists_at(version)) {
            let mut bytes = BytesMut::new();
            msg.encode(&mut bytes, version).unwrap();
            let read = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(read_message(&mut &bytes[..], &ctx));
            // (Before 1.26 an error's traces travel folded into its message.)
            let mut again = BytesMut::new();
            read.unwrap().encode(&mut again, version).unwrap();
            assert_eq!(again, bytes);
            seeds.push(("worker_logger", format!("{minor}-{i}"), [&[minor - 10][..], &bytes].concat()));
        }
    }
    assert!(seeds.len() > 2000, "{}", seeds.len());
    if let Some(dir) = std::env::var_os("WORKER_FUZZ_SEEDS_DIR") {
        for (target, name, bytes) in &seeds {
            let dir = std::path::Path::new(&dir).join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
