//! Property tests: every serialiser round-trips at every version, re-encodes byte for byte, and
//! reports every truncation as "incomplete" with an honest count of missing bytes.

use std::fmt::Debug;

use nix_formats::build_result::{BuildResult, KeyedBuildResult};
use nix_formats::path_info::ValidPathInfo;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::strategies::*;
use super::{decode_exact, encode_to_bytes, WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::types::{BuildOptions, ClientHandshakeInfo, UnkeyedValidPathInfo};
use crate::version::ProtocolVersion;
use crate::wire::{DecodeError, Decoder};

/// Encodes `value`, decodes it to `expected`, re-encodes it to the same bytes, and checks that
/// each strict prefix is reported as incomplete, needing no more bytes than are really missing.
fn round_trip<T>(value: &T, expected: &T, ctx: &WireCtx) -> Result<(), TestCaseError>
where
    T: WireEncode + WireDecode + PartialEq + Debug,
{
    let bytes = encode_to_bytes(value, ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let decoded: T = decode_exact(&bytes, ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, expected);
    let again = encode_to_bytes(&decoded, ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again[..], &bytes[..]);
    let step = (bytes.len() / 64).max(1);
    for n in (0..bytes.len()).step_by(step) {
        match T::decode(&mut Decoder::new(&bytes[..n], ctx.limits), ctx) {
            Err(DecodeError::Incomplete { needed }) => prop_assert!(needed >= 1 && n + needed <= bytes.len()),
            other => prop_assert!(false, "prefix of {} bytes gave {:?}", n, other.map(|_| ())),
        }
    }
    Ok(())
}

fn worker(minor: u8) -> WireCtx {
    WireCtx::worker(ProtocolVersion::new(1, minor))
}

fn serve(minor: u8) -> WireCtx {
    WireCtx::serve(ProtocolVersion::new(2, minor))
}

/// What survives of a build result at `ctx`.
fn project_build_result(r: &BuildResult, ctx: &WireCtx) -> BuildResult {
    let mut r = r.clone();
    let worker = ctx.protocol == super::Protocol::Worker;
    if !ctx.at_least(if worker { 29 } else { 3 }) {
        (r.times_built, r.is_non_deterministic, r.start_time, r.stop_time) = (0, false, 0, 0);
    }
    if !worker || !ctx.at_least(37) {
        (r.cpu_user_micros, r.cpu_system_micros) = (None, None);
    }
    if !ctx.at_least(if worker { 28 } else { 6 }) {
        r.built_outputs.clear();
    }
    r
}

/// What survives of a path info at `ctx`.
fn project_info(i: &UnkeyedValidPathInfo, ctx: &WireCtx) -> UnkeyedValidPathInfo {
    let mut i = i.clone();
    if ctx.protocol == super::Protocol::Serve {
        (i.registration_time, i.ultimate) = (0, false);
        if !ctx.at_least(4) {
            i.nar_hash = UnkeyedValidPathInfo::unknown_nar_hash();
        }
    }
    if !ctx.at_least(if ctx.protocol == super::Protocol::Worker { 16 } else { 4 }) {
        i.sigs.clear();
        i.ca = None;
        i.ultimate = false;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn strings_and_collections(s in text(), colls in string_collections(), n in any::<u64>(), b in any::<bool>()) {
        let (v, set, map) = colls;
        let ctx = worker(10);
        round_trip(&s, &s, &ctx)?;
        round_trip(&v, &v, &ctx)?;
        round_trip(&set, &set, &ctx)?;
        round_trip(&map, &map, &ctx)?;
        round_trip(&n, &n, &ctx)?;
        round_trip(&b, &b, &ctx)?;
        let raw = bytes::Bytes::from(s.into_bytes());
        round_trip(&raw, &raw, &ctx)?;
    }

    #[test]
    fn store_objects(p in store_path(), op in proptest::option::of(store_path()), ca in content_address(),
                     oca in proptest::option::of(content_address()), d in drv_output(), r in realisation()) {
        for ctx in [worker(10), serve(0)] {
            round_trip(&p, &p, &ctx)?;
            round_trip(&op, &op, &ctx)?;
            round_trip(&ca, &ca, &ctx)?;
            round_trip(&oca, &oca, &ctx)?;
            round_trip(&d, &d, &ctx)?;
            round_trip(&r, &r, &ctx)?;
        }
    }

    #[test]
    fn derived_paths((minor, value) in (21u8..=38).prop_flat_map(|m| (Just(m), derived_path(m)))) {
        round_trip(&value, &value, &worker(minor))?;
    }

    #[test]
    fn build_results(r in build_result(), minor in 0u8..=40, serve_minor in 0u8..=7) {
        let ctx = worker(minor);
        round_trip(&r, &project_build_result(&r, &ctx), &ctx)?;
        let ctx = serve(serve_minor);
        round_trip(&r, &project_build_result(&r, &ctx), &ctx)?;
    }

    #[test]
    fn keyed_build_results((minor, value) in (21u8..=38).prop_flat_map(|m| (Just(m), keyed_build_result(m)))) {
        let ctx = worker(minor);
        let expected = KeyedBuildResult { path: value.path.clone(), result: project_build_result(&value.result, &ctx) };
        round_trip(&value, &expected, &ctx)?;
    }

    #[test]
    fn path_infos(i in unkeyed_info(), p in store_path(), minor in 10u8..=38, serve_minor in 0u8..=7) {
        for ctx in [worker(minor), serve(serve_minor)] {
            let expected = project_info(&i, &ctx);
            round_trip(&i, &expected, &ctx)?;
            let keyed: ValidPathInfo = i.clone().with_path(p.clone());
            round_trip(&keyed, &expected.clone().with_path(p.clone()), &ctx)?;
        }
    }

    #[test]
    fn small_enums(m in build_mode(), t in trusted_flag()) {
        round_trip(&m, &m, &worker(10))?;
        round_trip(&t, &t, &worker(10))?;
    }

    #[test]
    fn handshake_info(info in client_handshake_info(), minor in 10u8..=38) {
        let ctx = worker(minor);
        let expected = ClientHandshakeInfo {
            daemon_nix_version: if minor >= 33 { info.daemon_nix_version.clone() } else { None },
            remote_trusts_us: if minor >= 35 { info.remote_trusts_us } else { None },
        };
        round_trip(&info, &expected, &ctx)?;
    }

    #[test]
    fn serve_build_options(o in build_options(), minor in 0u8..=7) {
        let expected = BuildOptions {
            max_log_size: o.max_log_size.filter(|_| minor >= 2),
            nr_repeats: o.nr_repeats.filter(|_| minor >= 3),
            enforce_determinism: o.enforce_determinism.filter(|_| minor >= 3),
            keep_failed: o.keep_failed.filter(|_| minor >= 7),
            ..o.clone()
        };
        round_trip(&o, &expected, &serve(minor))?;
    }

    /// Arbitrary bytes never make a decoder panic, and it always either decodes, reports a typed
    /// error, or asks for more bytes.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), minor in 0u8..=40) {
        let ctx = worker(minor);
        let mut d = Decoder::new(&bytes, ctx.limits);
        let _ = BuildResult::decode(&mut d, &ctx);
        let _ = decode_exact::<UnkeyedValidPathInfo>(&bytes, &ctx);
        let _ = decode_exact::<KeyedBuildResult>(&bytes, &ctx);
        let _ = decode_exact::<ValidPathInfo>(&bytes, &serve(minor % 8));
        let _ = decode_exact::<Vec<Vec<String>>>(&bytes, &ctx);
    }
}

#[test]
fn unrepresentable_values() {
    use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
    use nix_formats::store_path::StorePath;
    let drv = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv").unwrap();
    let opaque_drv = DerivedPath::Opaque(drv.clone());
    assert!(matches!(encode_to_bytes(&opaque_drv, &worker(29)), Err(ProtocolError::Unrepresentable { .. })));
    assert!(encode_to_bytes(&opaque_drv, &worker(30)).is_ok());
    let nested = DerivedPath::Built {
        drv_path: SingleDerivedPath::Built { drv_path: Box::new(SingleDerivedPath::Opaque(drv.clone())), output: "out".into() },
        outputs: OutputsSpec::All,
    };
    assert!(matches!(encode_to_bytes(&nested, &worker(29)), Err(ProtocolError::Unrepresentable { .. })));
    let empty = DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv), outputs: OutputsSpec::Names(Default::default()) };
    assert!(matches!(encode_to_bytes(&empty, &worker(38)), Err(ProtocolError::Unrepresentable { .. })));
    let r = BuildResult { start_time: -1, ..BuildResult::default() };
    assert!(matches!(encode_to_bytes(&r, &worker(29)), Err(ProtocolError::Unrepresentable { .. })));
    assert!(encode_to_bytes(&r, &worker(28)).is_ok(), "times are not sent before 1.29");
    let md5 = UnkeyedValidPathInfo::new(nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Md5, b""));
    assert!(matches!(encode_to_bytes(&md5, &worker(38)), Err(ProtocolError::Unrepresentable { .. })));
    assert!(matches!(
        encode_to_bytes(&ClientHandshakeInfo::default(), &worker(33)),
        Err(ProtocolError::MissingField(_))
    ));
}

#[test]
fn bad_values_are_typed_errors() {
    let ctx = worker(38);
    let three = 3u64.to_le_bytes();
    assert!(matches!(decode_exact::<crate::types::BuildMode>(&three, &ctx), Err(ProtocolError::BadValue { .. })));
    assert!(matches!(
        decode_exact::<Option<crate::types::TrustedFlag>>(&three, &ctx),
        Err(ProtocolError::BadValue { .. })
    ));
    let mut trailing = 0u64.to_le_bytes().to_vec();
    trailing.push(0);
    assert!(matches!(decode_exact::<u64>(&trailing, &ctx), Err(ProtocolError::TrailingBytes(1))));
    let mut not_in_store = bytes::BytesMut::new();
    crate::wire::encoder::put_str(&mut not_in_store, "/tmp/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo");
    assert!(matches!(
        decode_exact::<nix_formats::store_path::StorePath>(&not_in_store, &ctx),
        Err(ProtocolError::BadStorePath(_))
    ));
    // Nested lists beyond the depth limit.
    let limits = crate::Limits { max_depth: 2, ..crate::Limits::DEFAULT };
    let deep = encode_to_bytes(&vec![vec![vec![String::new()]]], &ctx).unwrap();
    assert!(matches!(
        decode_exact::<Vec<Vec<Vec<String>>>>(&deep, &ctx.clone().with_limits(limits)),
        Err(ProtocolError::TooDeep { max: 2 })
    ));
    assert!(decode_exact::<Vec<Vec<Vec<String>>>>(&deep, &ctx).is_ok());
}

/// Found by the `worker_response` fuzz target: a built output filed under a key that is not its
/// realisation's id decoded to a value that encodes differently (the encoder writes each
/// realisation under its id, as Nix does). It is refused now.
#[test]
fn built_output_under_another_id() {
    use nix_formats::build_result::BuildStatus;
    use nix_formats::hash::{Algorithm, Hash};
    use nix_formats::realisation::{DrvOutput, Realisation};
    use nix_formats::store_path::StoreDir;

    let ctx = WireCtx::worker(ProtocolVersion::new(1, 38));
    let id = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"drv"), output_name: "out".into() };
    let path = StoreDir::default().parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello").unwrap();
    let mut result = BuildResult::new(BuildStatus::Built, "");
    result.built_outputs.insert("out".into(), Realisation::new(id, path));
    let bytes = encode_to_bytes(&result, &ctx).unwrap();
    assert_eq!(decode_exact::<BuildResult>(&bytes, &ctx).unwrap(), result);
    // The same bytes with the key (the first "!out") naming another output.
    let at = bytes.windows(4).position(|w| w == b"!out").unwrap();
    let mut bad = bytes.to_vec();
    bad[at..at + 4].copy_from_slice(b"!bin");
    let r = decode_exact::<BuildResult>(&bad, &ctx);
    assert!(matches!(&r, Err(ProtocolError::BadDerivationOutput { output, .. }) if output == "bin"), "{r:?}");
}
