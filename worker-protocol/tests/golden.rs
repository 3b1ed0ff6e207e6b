//! Golden tests: every value file of Nix 2.26.3's common, worker and serve protocol test data is
//! decoded at its documented version to its documented values (see `shared/testdata/README.md`,
//! sections 3–5) with nothing left over, and the values re-encode to the file byte for byte.
//! The handshake files are in `golden_handshake.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use bytes::BytesMut;
use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::content_address::ContentAddress;
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;
use worker_protocol::types::{BuildMode, BuildOptions, ClientHandshakeInfo, TrustedFlag, UnkeyedValidPathInfo};
use worker_protocol::wire::Decoder;
use worker_protocol::{ProtocolVersion, WireCtx, WireDecode, WireEncode};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-2.26.3");

fn read(dir: &str, name: &str) -> Vec<u8> {
    let path = format!("{DATA}/{dir}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes the file as `expected.len()` values, compares, checks nothing is left, re-encodes.
fn check<T>(dir: &str, name: &str, ctx: &WireCtx, expected: &[T])
where
    T: WireEncode + WireDecode + PartialEq + Debug,
{
    let bytes = read(dir, name);
    let mut d = Decoder::new(&bytes, ctx.limits);
    let mut got = Vec::new();
    for i in 0..expected.len() {
        got.push(T::decode(&mut d, ctx).unwrap_or_else(|e| panic!("{dir}/{name}: value {i}: {e}")));
    }
    assert_eq!(got, expected, "{dir}/{name}: decoded values");
    assert!(d.remaining().is_empty(), "{dir}/{name}: {} bytes left over", d.remaining().len());
    let mut out = BytesMut::new();
    for v in expected {
        v.encode(&mut out, ctx).unwrap_or_else(|e| panic!("{dir}/{name}: encode: {e}"));
    }
    assert_eq!(&out[..], &bytes[..], "{dir}/{name}: re-encoding");
}

/// A file holding values of different types: decode and re-encode them one by one.
struct Seq<'a> {
    what: String,
    bytes: &'a [u8],
    decoder: Decoder<'a>,
    out: BytesMut,
    ctx: &'a WireCtx,
}

impl<'a> Seq<'a> {
    fn new(dir: &str, name: &str, bytes: &'a [u8], ctx: &'a WireCtx) -> Self {
        Self { what: format!("{dir}/{name}"), bytes, decoder: Decoder::new(bytes, ctx.limits), out: BytesMut::new(), ctx }
    }

    fn next<T: WireEncode + WireDecode + PartialEq + Debug>(&mut self, expected: &T) {
        let got = T::decode(&mut self.decoder, self.ctx).unwrap_or_else(|e| panic!("{}: {e}", self.what));
        assert_eq!(&got, expected, "{}", self.what);
        expected.encode(&mut self.out, self.ctx).unwrap();
    }

    fn finish(self) {
        assert!(self.decoder.remaining().is_empty(), "{}: bytes left over", self.what);
        assert_eq!(&self.out[..], self.bytes, "{}: re-encoding", self.what);
    }
}

fn worker(minor: u8) -> WireCtx {
    WireCtx::worker(ProtocolVersion::new(1, minor))
}

fn serve(minor: u8) -> WireCtx {
    WireCtx::serve(ProtocolVersion::new(2, minor))
}

/// `P.<name>` of the README.
fn p(name: &str) -> StorePath {
    StorePath::from_base_name(&format!("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-{name}")).unwrap()
}

/// `Q.<name>` of the README.
fn q(name: &str) -> StorePath {
    StorePath::from_base_name(&format!("g1w7hyyyy1w7hy3qg1w7hy3qgqqqqy3q-{name}")).unwrap()
}

fn p_ca() -> StorePath {
    StorePath::from_base_name("n5wkd9frr45pa74if5gpz9j7mifg27fh-foo").unwrap()
}

fn h1() -> Hash {
    Hash::parse_sri("sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=").unwrap()
}

fn h2() -> Hash {
    Hash::parse_sri("sha256-b4afnqKCO9oWXgYHb9DeQ2berSwOjS27rSd9TxXDc/U=").unwrap()
}

fn ca(text: &str) -> ContentAddress {
    ContentAddress::parse(text).unwrap()
}

fn ca_text() -> ContentAddress {
    ca("text:sha256:1vb2xd67750jrvqgykxrf5ipl3h1q57sxc57q5nzjw56bqp3sxzr")
}

fn ca_flat() -> ContentAddress {
    ca("fixed:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0")
}

fn ca_nar() -> ContentAddress {
    ca("fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh")
}

fn drv_output(hash: Hash, name: &str) -> DrvOutput {
    DrvOutput { drv_hash: hash, output_name: name.to_owned() }
}

fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn r1() -> Realisation {
    let mut r = Realisation::new(drv_output(h1(), "baz"), p("foo"));
    r.signatures = set(&["asdf".to_owned(), "qwer".to_owned()]);
    r
}

fn r2() -> Realisation {
    let mut r = r1();
    r.dependent_realisations.insert(drv_output(h2(), "quux"), p("foo"));
    r
}

/// `RB.bar` and `RB.foo`, keyed by output name.
fn built_outputs() -> BTreeMap<String, Realisation> {
    [("bar", p("bar")), ("foo", p("foo"))]
        .into_iter()
        .map(|(name, path)| (name.to_owned(), Realisation::new(drv_output(h2(), name), path)))
        .collect()
}

/// Checks the nine common files in `dir` at `ctx`.
fn check_common(dir: &str, ctx: &WireCtx) {
    check(dir, "string.bin", ctx, &strings(&["", "hi", "white rabbit", "大白兔", "oh no "]));
    check(dir, "store-path.bin", ctx, &[p("foo"), p("foo-bar")]);
    check(dir, "content-address.bin", ctx, &[ca_text(), ca_flat(), ca_nar()]);
    check(dir, "drv-output.bin", ctx, &[drv_output(h1(), "baz"), drv_output(h2(), "quux")]);
    check(dir, "realisation.bin", ctx, &[r1(), r2()]);
    let bytes = read(dir, "vector.bin");
    let mut seq = Seq::new(dir, "vector.bin", &bytes, ctx);
    seq.next(&strings(&[]));
    seq.next(&strings(&[""]));
    seq.next(&strings(&["", "foo", "bar"]));
    seq.next(&vec![strings(&[]), strings(&[""]), strings(&["", "1", "2"])]);
    seq.finish();

    let bytes = read(dir, "set.bin");
    let mut seq = Seq::new(dir, "set.bin", &bytes, ctx);
    seq.next(&set::<String>(&[]));
    seq.next(&set(&["".to_owned()]));
    seq.next(&set(&["".to_owned(), "bar".to_owned(), "foo".to_owned()]));
    seq.next(&set(&[set::<String>(&[]), set(&["".to_owned()]), set(&["".to_owned(), "1".to_owned(), "2".to_owned()])]));
    seq.finish();

    check(dir, "optional-store-path.bin", ctx, &[None, Some(p("foo-bar"))]);
    check(dir, "optional-content-address.bin", ctx, &[None, Some(ca_flat())]);
}

#[test]
fn common_protocol() {
    check_common("common-protocol", &worker(10));
}

#[test]
fn common_files_in_worker_protocol() {
    check_common("worker-protocol", &worker(10));
}

#[test]
fn common_files_in_serve_protocol() {
    check_common("serve-protocol", &serve(0));
}

#[test]
fn worker_build_mode_and_trust() {
    check("worker-protocol", "build-mode.bin", &worker(10), &[BuildMode::Normal, BuildMode::Repair, BuildMode::Check]);
    check(
        "worker-protocol",
        "optional-trusted-flag.bin",
        &worker(10),
        &[None, Some(TrustedFlag::Trusted), Some(TrustedFlag::NotTrusted)],
    );
}

fn built(drv: StorePath, outputs: OutputsSpec) -> DerivedPath {
    DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv), outputs }
}

fn names(items: &[&str]) -> OutputsSpec {
    OutputsSpec::Names(items.iter().map(|s| s.to_string()).collect())
}

#[test]
fn worker_derived_paths() {
    check(
        "worker-protocol",
        "derived-path-1.29.bin",
        &worker(29),
        &[
            DerivedPath::Opaque(p("foo")),
            built(p("bar.drv"), OutputsSpec::All),
            built(p("bar.drv"), names(&["x", "y"])),
        ],
    );
    check(
        "worker-protocol",
        "derived-path-1.30.bin",
        &worker(30),
        &[
            DerivedPath::Opaque(p("foo")),
            DerivedPath::Opaque(p("foo.drv")),
            built(p("bar.drv"), OutputsSpec::All),
            built(p("bar.drv"), names(&["x", "y"])),
        ],
    );
}

/// The three build results of the README, with the fields of 1.29 (times) and outputs.
fn build_results(with_times: bool, with_outputs: bool, with_cpu: bool) -> Vec<BuildResult> {
    let mut a = BuildResult::new(BuildStatus::OutputRejected, "no idea why");
    let mut b = BuildResult::new(BuildStatus::NotDeterministic, "no idea why");
    let mut c = BuildResult::new(BuildStatus::Built, "");
    if with_times {
        (b.times_built, b.is_non_deterministic, b.start_time, b.stop_time) = (3, true, 30, 50);
        (c.times_built, c.start_time, c.stop_time) = (1, 30, 50);
    }
    if with_outputs {
        c.built_outputs = built_outputs();
    }
    if with_cpu {
        c.cpu_user_micros = Some(500_000_000);
        c.cpu_system_micros = Some(604_000_000);
    }
    a.times_built = 0;
    vec![a, b, c]
}

#[test]
fn worker_build_results() {
    check("worker-protocol", "build-result-1.27.bin", &worker(27), &build_results(false, false, false));
    check("worker-protocol", "build-result-1.28.bin", &worker(28), &build_results(false, true, false));
    check("worker-protocol", "build-result-1.29.bin", &worker(29), &build_results(true, true, false));
    check("worker-protocol", "build-result-1.37.bin", &worker(37), &build_results(true, true, true));
}

#[test]
fn worker_keyed_build_results() {
    let mut b = BuildResult::new(BuildStatus::NotDeterministic, "no idea why");
    (b.times_built, b.is_non_deterministic, b.start_time, b.stop_time) = (3, true, 30, 50);
    check(
        "worker-protocol",
        "keyed-build-result-1.29.bin",
        &worker(29),
        &[
            KeyedBuildResult {
                path: DerivedPath::Opaque(p("xxx")),
                result: BuildResult::new(BuildStatus::OutputRejected, "no idea why"),
            },
            KeyedBuildResult { path: built(p("bar.drv"), names(&["out"])), result: b },
        ],
    );
}

fn unkeyed(deriver: Option<StorePath>, references: &[StorePath]) -> UnkeyedValidPathInfo {
    let mut i = UnkeyedValidPathInfo::new(h1());
    i.deriver = deriver;
    i.references = set(references);
    i.registration_time = 23423;
    i.nar_size = 34878;
    i
}

#[test]
fn worker_path_infos() {
    check(
        "worker-protocol",
        "unkeyed-valid-path-info-1.15.bin",
        &worker(15),
        &[unkeyed(None, &[]), unkeyed(Some(p("bar.drv")), &[q("foo.drv")])],
    );
    let keyed_15 = [
        unkeyed(None, &[]).with_path(p("bar")),
        unkeyed(Some(p("bar.drv")), &[p("bar"), q("foo")]).with_path(p("bar")),
    ];
    check("worker-protocol", "valid-path-info-1.15.bin", &worker(15), &keyed_15);

    let mut a = keyed_15[0].clone();
    a.ultimate = true;
    let mut b = keyed_15[1].clone();
    b.sigs = set(&["fake-sig-1".to_owned(), "fake-sig-2".to_owned()]);
    let mut c: ValidPathInfo = unkeyed(None, &[p("bar"), p_ca()]).with_path(p_ca());
    c.ca = Some(ca_nar());
    check("worker-protocol", "valid-path-info-1.16.bin", &worker(16), &[a, b, c.clone()]);
    // P.ca really is the path of that content address and those references.
    let sd = nix_formats::store_path::StoreDir::default();
    let refs: Vec<StorePath> = vec![p("bar")];
    assert_eq!(ca_nar().store_path(&sd, "foo", refs.iter(), true).unwrap(), p_ca());
    assert!(c.is_content_addressed(&sd));
}

#[test]
fn worker_client_handshake_info() {
    check::<ClientHandshakeInfo>("worker-protocol", "client-handshake-info_1_30.bin", &worker(30), &[Default::default()]);
    let info = |v: &str, t| ClientHandshakeInfo { daemon_nix_version: Some(v.to_owned()), remote_trusts_us: t };
    check("worker-protocol", "client-handshake-info_1_33.bin", &worker(33), &[info("foo", None), info("bar", None)]);
    check(
        "worker-protocol",
        "client-handshake-info_1_35.bin",
        &worker(35),
        &[info("foo", Some(TrustedFlag::NotTrusted)), info("bar", Some(TrustedFlag::Trusted))],
    );
}

#[test]
fn serve_build_results() {
    check("serve-protocol", "build-result-2.2.bin", &serve(2), &build_results(false, false, false));
    let mut at_2_3 = build_results(true, false, false);
    at_2_3[2].times_built = 0;
    check("serve-protocol", "build-result-2.3.bin", &serve(3), &at_2_3);
    check("serve-protocol", "build-result-2.6.bin", &serve(6), &build_results(true, true, false));
    // Byte-identical twins in the worker protocol.
    assert_eq!(read("serve-protocol", "build-result-2.2.bin"), read("worker-protocol", "build-result-1.27.bin"));
    assert_eq!(read("serve-protocol", "build-result-2.6.bin"), read("worker-protocol", "build-result-1.29.bin"));
}

fn serve_info(deriver: Option<StorePath>, references: &[StorePath], nar_hash: Hash) -> UnkeyedValidPathInfo {
    let mut i = UnkeyedValidPathInfo::new(nar_hash);
    i.deriver = deriver;
    i.references = set(references);
    i.nar_size = 34878;
    i
}

#[test]
fn serve_path_infos() {
    let dummy = Hash::zero(Algorithm::Sha256);
    check(
        "serve-protocol",
        "unkeyed-valid-path-info-2.3.bin",
        &serve(3),
        &[serve_info(None, &[], dummy.clone()), serve_info(Some(p("bar.drv")), &[q("foo.drv")], dummy)],
    );
    let a = serve_info(Some(p("bar.drv")), &[q("foo.drv")], h1());
    let mut b = serve_info(Some(p("bar.drv")), &[p("bar"), p_ca()], h1());
    b.ca = Some(ca_nar());
    b.sigs = set(&["fake-sig-1".to_owned(), "fake-sig-2".to_owned()]);
    check("serve-protocol", "unkeyed-valid-path-info-2.4.bin", &serve(4), &[a, b]);
}

#[test]
fn serve_build_options() {
    let base = BuildOptions { max_silent_time: 5, build_timeout: 6, ..Default::default() };
    check("serve-protocol", "build-options-2.1.bin", &serve(1), std::slice::from_ref(&base));
    let v2 = BuildOptions { max_log_size: Some(7), ..base };
    check("serve-protocol", "build-options-2.2.bin", &serve(2), std::slice::from_ref(&v2));
    let v3 = BuildOptions { nr_repeats: Some(8), enforce_determinism: Some(true), ..v2 };
    check("serve-protocol", "build-options-2.3.bin", &serve(3), std::slice::from_ref(&v3));
    let v7 = BuildOptions { enforce_determinism: Some(false), keep_failed: Some(true), ..v3 };
    check("serve-protocol", "build-options-2.7.bin", &serve(7), &[v7]);
}

/// Every file in the three folders is covered by a test here or in `golden_handshake.rs`.
#[test]
fn every_file_is_covered() {
    let covered: BTreeSet<&str> = [
        "string.bin", "store-path.bin", "content-address.bin", "drv-output.bin", "realisation.bin",
        "vector.bin", "set.bin", "optional-store-path.bin", "optional-content-address.bin",
        "build-mode.bin", "optional-trusted-flag.bin", "derived-path-1.29.bin", "derived-path-1.30.bin",
        "build-result-1.27.bin", "build-result-1.28.bin", "build-result-1.29.bin", "build-result-1.37.bin",
        "keyed-build-result-1.29.bin", "unkeyed-valid-path-info-1.15.bin", "valid-path-info-1.15.bin",
        "valid-path-info-1.16.bin", "client-handshake-info_1_30.bin", "client-handshake-info_1_33.bin",
        "client-handshake-info_1_35.bin", "handshake-to-client.bin", "build-result-2.2.bin",
        "build-result-2.3.bin", "build-result-2.6.bin", "unkeyed-valid-path-info-2.3.bin",
        "unkeyed-valid-path-info-2.4.bin", "build-options-2.1.bin", "build-options-2.2.bin",
        "build-options-2.3.bin", "build-options-2.7.bin",
    ]
    .into();
    for dir in ["common-protocol", "worker-protocol", "serve-protocol"] {
        for entry in std::fs::read_dir(format!("{DATA}/{dir}")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(covered.contains(name.as_str()), "{dir}/{name} has no golden test");
        }
    }
}
