//! `ClientConnection` against `ServerConnection` over an in-memory duplex stream, for every
//! operation: the server answers from a table of expected requests (so a request the client
//! encodes wrongly finds no answer), records each payload, and the client must return the
//! table's answer. Payload forms are covered at the versions that change them (framed, pulled
//! with `STDERR_READ`, inline), and so are errors, log messages and broken connections.

mod duplex;

use std::collections::{BTreeMap, BTreeSet};

use duplex::*;
use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::derivation::DerivationOutput;
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::realisation::{DrvOutput, Realisation};
use worker_protocol::ops::request::add::*;
use worker_protocol::ops::request::build::*;
use worker_protocol::ops::request::gc::*;
use worker_protocol::ops::request::query::*;
use worker_protocol::ops::response::{
    AddToStoreReply, GcResult, MissingPaths, RealisationReply, SubstitutablePathInfo,
};
use worker_protocol::ops::{BasicDerivation, ClientOptions, Request, Response};
use worker_protocol::types::{BuildMode, UnkeyedValidPathInfo};
use worker_protocol::{ProtocolError, ProtocolVersion};

const V38: ProtocolVersion = ProtocolVersion::new(1, 38);

fn paths(names: &[&str]) -> BTreeSet<nix_formats::store_path::StorePath> {
    names.iter().map(|n| sp(n)).collect()
}

#[tokio::test]
async fn queries() {
    let info = sample_info("a", &nar_of(b"a"));
    let (_, unkeyed) = UnkeyedValidPathInfo::split(info.clone());
    let missing = MissingPaths {
        will_build: paths(&["x.drv"]),
        will_substitute: paths(&["y"]),
        unknown: paths(&["z"]),
        download_size: 10,
        nar_size: 20,
    };
    let subst = SubstitutablePathInfo { deriver: Some(sp("d.drv")), references: paths(&["r"]), download_size: 1, nar_size: 2 };
    let built = DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(sp("x.drv")), outputs: OutputsSpec::All };
    let drv_output = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"drv"), output_name: "out".into() };
    let realisation = Realisation::new(drv_output.clone(), sp("out"));
    let table = vec![
        answer(Request::SetOptions(ClientOptions::default()), Response::SetOptions),
        answer(IsValidPath { path: sp("a") }, Response::IsValidPath(true)),
        answer(QueryValidPaths { paths: paths(&["a", "b"]), substitute: true }, Response::QueryValidPaths(paths(&["a"]))),
        answer(QueryAllValidPaths {}, Response::QueryAllValidPaths(paths(&["a", "c"]))),
        answer(QueryPathInfo { path: sp("a") }, Response::QueryPathInfo(Some(unkeyed))),
        answer(QueryPathInfo { path: sp("b") }, Response::QueryPathInfo(None)),
        answer(QueryPathFromHashPart { hash_part: sp("a").hash_part().to_owned() }, Response::QueryPathFromHashPart(Some(sp("a")))),
        answer(QueryReferrers { path: sp("a") }, Response::QueryReferrers(paths(&["c"]))),
        answer(QueryValidDerivers { path: sp("a") }, Response::QueryValidDerivers(paths(&["a.drv"]))),
        answer(
            QueryDerivationOutputMap { path: sp("x.drv") },
            Response::QueryDerivationOutputMap(BTreeMap::from([("out".into(), Some(sp("x"))), ("dev".into(), None)])),
        ),
        answer(QuerySubstitutablePaths { paths: paths(&["y"]) }, Response::QuerySubstitutablePaths(paths(&["y"]))),
        answer(
            QuerySubstitutablePathInfos { paths: BTreeMap::from([(sp("y"), None)]) },
            Response::QuerySubstitutablePathInfos(BTreeMap::from([(sp("y"), subst.clone())])),
        ),
        answer(QueryMissing { targets: vec![built.clone()] }, Response::QueryMissing(missing.clone())),
        answer(
            QueryRealisation { id: drv_output.clone() },
            Response::QueryRealisation(RealisationReply::Realisations([realisation.clone()].into())),
        ),
        answer(HasSubstitutes { path: sp("y") }, Response::HasSubstitutes(true)),
        answer(QueryPathHash { path: sp("a") }, Response::QueryPathHash(info.nar_hash.clone())),
        answer(QueryReferences { path: sp("a") }, Response::QueryReferences(paths(&["r"]))),
        answer(QueryDeriver { path: sp("a") }, Response::QueryDeriver(Some(sp("a.drv")))),
        answer(QuerySubstitutablePathInfo { path: sp("y") }, Response::QuerySubstitutablePathInfo(Some(subst.clone()))),
        answer(QueryDerivationOutputs { path: sp("x.drv") }, Response::QueryDerivationOutputs(paths(&["x"]))),
        answer(
            QueryDerivationOutputNames { path: sp("x.drv") },
            Response::QueryDerivationOutputNames(["out".to_owned()].into()),
        ),
    ];
    let (mut c, server) = start(V38, table).await;
    c.set_options(&ClientOptions::default()).await.unwrap();
    assert!(c.is_valid_path(&sp("a")).await.unwrap());
    assert_eq!(c.query_valid_paths(&paths(&["a", "b"]), true).await.unwrap(), paths(&["a"]));
    assert_eq!(c.query_all_valid_paths().await.unwrap(), paths(&["a", "c"]));
    assert_eq!(c.query_path_info(&sp("a")).await.unwrap(), Some(info.clone()));
    assert_eq!(c.query_path_info(&sp("b")).await.unwrap(), None);
    assert_eq!(c.query_path_from_hash_part(sp("a").hash_part()).await.unwrap(), Some(sp("a")));
    assert_eq!(c.query_referrers(&sp("a")).await.unwrap(), paths(&["c"]));
    assert_eq!(c.query_valid_derivers(&sp("a")).await.unwrap(), paths(&["a.drv"]));
    let map = c.query_derivation_output_map(&sp("x.drv")).await.unwrap();
    assert_eq!(map["out"], Some(sp("x")));
    assert_eq!(map["dev"], None);
    assert_eq!(c.query_substitutable_paths(&paths(&["y"])).await.unwrap(), paths(&["y"]));
    let infos = c.query_substitutable_path_infos(&BTreeMap::from([(sp("y"), None)])).await.unwrap();
    assert_eq!(infos[&sp("y")], subst);
    assert_eq!(c.query_missing(&[built]).await.unwrap(), missing);
    assert_eq!(c.query_realisation(&drv_output).await.unwrap(), Some(realisation));
    assert!(c.has_substitutes(&sp("y")).await.unwrap());
    assert_eq!(c.query_path_hash(&sp("a")).await.unwrap(), info.nar_hash);
    assert_eq!(c.query_references(&sp("a")).await.unwrap(), paths(&["r"]));
    assert_eq!(c.query_deriver(&sp("a")).await.unwrap(), Some(sp("a.drv")));
    assert_eq!(c.query_substitutable_path_info(&sp("y")).await.unwrap(), Some(subst));
    assert_eq!(c.query_derivation_outputs(&sp("x.drv")).await.unwrap(), paths(&["x"]));
    assert_eq!(c.query_derivation_output_names(&sp("x.drv")).await.unwrap(), ["out".to_owned()].into());
    assert_eq!(finish(c, server).await.len(), 21);
}

/// Before 1.31 a realisation comes back as its output path; before 1.27 and 1.22 the client
/// refuses operations the daemon cannot have, without sending anything.
#[tokio::test]
async fn version_gated_queries() {
    let id = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"drv"), output_name: "out".into() };
    let table = vec![answer(
        QueryRealisation { id: id.clone() },
        Response::QueryRealisation(RealisationReply::Paths(paths(&["out"]))),
    )];
    let (mut c, server) = start(ProtocolVersion::new(1, 30), table).await;
    assert_eq!(c.query_realisation(&id).await.unwrap(), Some(Realisation::new(id.clone(), sp("out"))));
    finish(c, server).await;

    let (mut c, server) = start(ProtocolVersion::new(1, 21), vec![]).await;
    let err = c.query_realisation(&id).await.unwrap_err();
    assert!(matches!(err, ProtocolError::Unrepresentable { .. }), "{err}");
    let err = c.query_derivation_output_map(&sp("x.drv")).await.unwrap_err();
    assert!(matches!(err, ProtocolError::Unrepresentable { .. }), "{err}");
    let err = c.build_paths_with_results(&[], BuildMode::Normal).await.unwrap_err();
    assert!(matches!(err, ProtocolError::Unrepresentable { .. }), "{err}");
    assert!(!c.is_broken());
    assert!(finish(c, server).await.is_empty());
}

#[tokio::test]
async fn builds_and_gc() {
    let built = DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(sp("x.drv")), outputs: OutputsSpec::All };
    let keyed = KeyedBuildResult { path: built.clone(), result: BuildResult::new(BuildStatus::Built, "") };
    let drv = BasicDerivation {
        name: "x".into(),
        outputs: BTreeMap::from([("out".into(), DerivationOutput::InputAddressed(sp("x")))]),
        input_srcs: paths(&["src"]),
        system: b"x86_64-linux".to_vec(),
        builder: b"/bin/sh".to_vec(),
        args: vec![b"-c".to_vec(), b"echo hi > $out".to_vec()],
        env: BTreeMap::from([(b"out".to_vec(), b"/nix/store/x".to_vec())]),
    };
    let gc = CollectGarbage { action: GcAction::DeleteDead, paths_to_delete: BTreeSet::new(), ignore_liveness: false, max_freed: 100 };
    let specific =
        CollectGarbage { action: GcAction::DeleteSpecific, paths_to_delete: paths(&["a"]), ignore_liveness: false, max_freed: u64::MAX };
    let freed = GcResult { paths: ["/nix/store/gone".to_owned()].into(), bytes_freed: 4096 };
    let roots = BTreeMap::from([(sp("a"), BTreeSet::from(["/root/link".to_owned()]))]);
    let table = vec![
        answer(BuildPaths { paths: vec![built.clone()], mode: BuildMode::Check }, Response::BuildPaths),
        answer(
            BuildPathsWithResults { paths: vec![built.clone()], mode: BuildMode::Normal },
            Response::BuildPathsWithResults(vec![keyed.clone()]),
        ),
        answer(
            BuildDerivation { drv_path: sp("x.drv"), drv: drv.clone(), mode: BuildMode::Repair },
            Response::BuildDerivation(keyed.result.clone()),
        ),
        answer(EnsurePath { path: sp("a") }, Response::EnsurePath),
        answer(AddTempRoot { path: sp("a") }, Response::AddTempRoot),
        answer(AddIndirectRoot { link: "/home/u/result".into() }, Response::AddIndirectRoot),
        answer(AddPermRoot { path: sp("a"), gc_root: "gcroot".into() }, Response::AddPermRoot("/abs/gcroot".into())),
        answer(FindRoots {}, Response::FindRoots(roots.clone())),
        answer(gc.clone(), Response::CollectGarbage(freed.clone())),
        answer(specific, Response::CollectGarbage(GcResult::default())),
        answer(OptimiseStore {}, Response::OptimiseStore),
        answer(VerifyStore { check_contents: true, repair: false }, Response::VerifyStore(true)),
        answer(SyncWithGC {}, Response::SyncWithGC),
    ];
    let (mut c, server) = start(V38, table).await;
    c.build_paths(std::slice::from_ref(&built), BuildMode::Check).await.unwrap();
    assert_eq!(c.build_paths_with_results(&[built], BuildMode::Normal).await.unwrap(), std::slice::from_ref(&keyed));
    assert_eq!(c.build_derivation(&sp("x.drv"), &drv, BuildMode::Repair).await.unwrap(), keyed.result);
    c.ensure_path(&sp("a")).await.unwrap();
    c.add_temp_root(&sp("a")).await.unwrap();
    c.add_indirect_root("/home/u/result").await.unwrap();
    assert_eq!(c.add_perm_root(&sp("a"), "gcroot").await.unwrap(), "/abs/gcroot");
    assert_eq!(c.find_roots().await.unwrap(), roots);
    assert_eq!(c.collect_garbage(&gc).await.unwrap(), freed);
    assert_eq!(c.delete_paths(&paths(&["a"])).await.unwrap(), GcResult::default());
    c.optimise_store().await.unwrap();
    assert!(c.verify_store(true, false).await.unwrap());
    c.sync_with_gc().await.unwrap();
    assert_eq!(finish(c, server).await.len(), 13);
}

#[tokio::test]
async fn small_additions() {
    let drv_output = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"drv"), output_name: "out".into() };
    let realisation = Realisation::new(drv_output, sp("out"));
    let sigs = BTreeSet::from(["key:c2ln".to_owned()]);
    let table = vec![
        answer(
            AddTextToStore { name: "t".into(), text: bytes::Bytes::from_static(b"text"), references: paths(&["r"]) },
            Response::AddTextToStore(sp("t")),
        ),
        answer(AddSignatures { path: sp("a"), sigs: sigs.clone() }, Response::AddSignatures),
        answer(RegisterDrvOutput { realisation: realisation.clone() }, Response::RegisterDrvOutput),
        answer(AddBuildLog { drv_path: sp("x.drv") }, Response::AddBuildLog),
    ];
    let (mut c, server) = start(V38, table).await;
    assert_eq!(c.add_text_to_store("t", b"text", &paths(&["r"])).await.unwrap(), sp("t"));
    c.add_signatures(&sp("a"), &sigs).await.unwrap();
    c.register_drv_output(&realisation).await.unwrap();
    let log = vec![b'l'; 100_000];
    c.add_build_log(&sp("x.drv"), &mut &log[..]).await.unwrap();
    let seen = finish(c, server).await;
    assert_eq!(seen[3].payload, log);
}

/// `AddToStore` in its framed form (1.25 on) for every method, and in its legacy forms.
#[tokio::test]
async fn add_to_store_forms() {
    let nar = nar_of(b"contents");
    let info_nar = sample_info("n", &nar);
    let info_flat = sample_info("f", &nar);
    let info_text = sample_info("t", &nar);
    let method = |method, algo| CaMethodAlgo { method, algo };
    let framed = |name: &str, m| AddToStore::Framed(AddToStoreFramed { name: name.into(), method: m, references: paths(&["r"]), repair: true });
    let table = vec![
        answer(framed("n", method(IngestionMethod::Nar, Algorithm::Sha256)), Response::AddToStore(AddToStoreReply::Info(info_nar.clone()))),
        answer(framed("f", method(IngestionMethod::Flat, Algorithm::Sha1)), Response::AddToStore(AddToStoreReply::Info(info_flat.clone()))),
        answer(framed("t", method(IngestionMethod::Text, Algorithm::Sha256)), Response::AddToStore(AddToStoreReply::Info(info_text.clone()))),
    ];
    let (mut c, server) = start(V38, table).await;
    let got = c.add_to_store("n", method(IngestionMethod::Nar, Algorithm::Sha256), &paths(&["r"]), true, &mut &nar[..]).await;
    assert_eq!(got.unwrap(), info_nar);
    let got = c.add_to_store("f", method(IngestionMethod::Flat, Algorithm::Sha1), &paths(&["r"]), true, &mut &b"contents"[..]).await;
    assert_eq!(got.unwrap(), info_flat);
    let got = c.add_to_store("t", method(IngestionMethod::Text, Algorithm::Sha256), &paths(&["r"]), true, &mut &b"text"[..]).await;
    assert_eq!(got.unwrap(), info_text);
    let seen = finish(c, server).await;
    assert_eq!(seen[0].payload, nar);
    assert_eq!(seen[1].payload, b"contents");
    assert_eq!(seen[2].payload, b"text");

    // Before 1.25: a NAR inline (flat data wrapped into one), text by AddTextToStore, and the
    // info fetched afterwards.
    let (_, unkeyed) = UnkeyedValidPathInfo::split(info_nar.clone());
    let legacy = |name: &str, fixed, recursive, algo| {
        AddToStore::Legacy(AddToStoreLegacy { name: name.into(), fixed, recursive, algo })
    };
    let table = vec![
        answer(legacy("n", false, true, Algorithm::Sha256), Response::AddToStore(AddToStoreReply::Path(sp("n")))),
        answer(legacy("f", true, false, Algorithm::Sha1), Response::AddToStore(AddToStoreReply::Path(sp("n")))),
        answer(
            AddTextToStore { name: "t".into(), text: bytes::Bytes::from_static(b"text"), references: paths(&["r"]) },
            Response::AddTextToStore(sp("n")),
        ),
        answer(QueryPathInfo { path: sp("n") }, Response::QueryPathInfo(Some(unkeyed))),
    ];
    let (mut c, server) = start(ProtocolVersion::new(1, 24), table).await;
    let mut trailing = nar.clone();
    trailing.extend_from_slice(b"not part of the NAR");
    let mut source = &trailing[..];
    let got = c.add_to_store("n", method(IngestionMethod::Nar, Algorithm::Sha256), &BTreeSet::new(), false, &mut source).await;
    assert_eq!(got.unwrap(), info_nar);
    assert_eq!(source, b"not part of the NAR", "exactly one NAR is read from the source");
    let got = c.add_to_store("f", method(IngestionMethod::Flat, Algorithm::Sha1), &BTreeSet::new(), false, &mut &b"contents"[..]).await;
    assert_eq!(got.unwrap(), info_nar);
    let got = c.add_to_store("t", method(IngestionMethod::Text, Algorithm::Sha256), &paths(&["r"]), false, &mut &b"text"[..]).await;
    assert_eq!(got.unwrap(), info_nar);
    for (m, refs, repair) in [
        (method(IngestionMethod::Nar, Algorithm::Sha256), paths(&["r"]), false),
        (method(IngestionMethod::Nar, Algorithm::Sha256), BTreeSet::new(), true),
        (method(IngestionMethod::Git, Algorithm::Sha1), BTreeSet::new(), false),
        (method(IngestionMethod::Text, Algorithm::Sha1), BTreeSet::new(), false),
    ] {
        let err = c.add_to_store("x", m, &refs, repair, &mut &nar[..]).await.unwrap_err();
        assert!(matches!(err, ProtocolError::Unrepresentable { .. }), "{m}: {err}");
    }
    let seen = finish(c, server).await;
    assert_eq!(seen[0].payload, nar);
    // Each addition is followed by a QueryPathInfo.
    assert_eq!(seen[2].payload, nar, "flat contents go as the NAR of one file");
    assert!(matches!(seen[4].request, Request::AddTextToStore(_)));
    assert_eq!(seen.len(), 6);
}

/// `AddToStoreNar`: framed from 1.23, pulled with `STDERR_READ` at 1.21 and 1.22, inline before.
#[tokio::test]
async fn add_to_store_nar_forms() {
    let nar = nar_of(&vec![5u8; 300_000]);
    let info = sample_info("p", &nar);
    for minor in [38, 23, 22, 21, 20] {
        let request = AddToStoreNar { info: info.clone(), repair: false, dont_check_sigs: true };
        let (mut c, server) = start(ProtocolVersion::new(1, minor), vec![answer(request, Response::AddToStoreNar)]).await;
        let mut with_tail = nar.clone();
        with_tail.extend_from_slice(b"tail");
        let mut source = &with_tail[..];
        c.add_to_store_nar(&info, &mut source, false, true).await.unwrap();
        assert_eq!(source, b"tail", "1.{minor}: exactly one NAR is read");
        let seen = finish(c, server).await;
        assert_eq!(seen[0].payload, nar, "1.{minor}");
    }
}

/// `AddMultipleToStore` from 1.32; one `AddToStoreNar` per path before.
#[tokio::test]
async fn add_multiple_to_store() {
    let nars = [nar_of(b"one"), nar_of(b"two")];
    let infos = [sample_info("one", &nars[0]), sample_info("two", &nars[1])];
    let table = vec![answer(AddMultipleToStore { repair: false, dont_check_sigs: false }, Response::AddMultipleToStore)];
    let (mut c, server) = start(V38, table).await;
    let items = infos.iter().cloned().zip(nars.iter().map(|n| &n[..])).collect();
    c.add_multiple_to_store(items, false, false).await.unwrap();
    let seen = finish(c, server).await;
    assert_eq!(decode_multiple(&seen[0].payload), infos.iter().cloned().zip(nars.iter().cloned()).collect::<Vec<_>>());

    let table = infos
        .iter()
        .map(|i| answer(AddToStoreNar { info: i.clone(), repair: true, dont_check_sigs: false }, Response::AddToStoreNar))
        .collect();
    let (mut c, server) = start(ProtocolVersion::new(1, 31), table).await;
    let items = infos.iter().cloned().zip(nars.iter().map(|n| &n[..])).collect();
    c.add_multiple_to_store(items, true, false).await.unwrap();
    let seen = finish(c, server).await;
    assert_eq!(seen.iter().map(|s| s.payload.clone()).collect::<Vec<_>>(), nars);
}

/// Data out: `NarFromPath`'s raw NAR, `ExportPath`'s `STDERR_WRITE`s; data in: `ImportPaths`.
#[tokio::test]
async fn data_streams() {
    let nar = nar_of(&vec![9u8; 200_000]);
    let export = vec![3u8; 150_000];
    let table = vec![
        (Request::NarFromPath(NarFromPath { path: sp("a") }), Answer::Nar(nar.clone())),
        (Request::ExportPath(ExportPath { path: sp("a"), sign: false }), Answer::Export(export.clone())),
        answer(ImportPaths {}, Response::ImportPaths(vec![sp("a")])),
        answer(IsValidPath { path: sp("a") }, Response::IsValidPath(true)),
    ];
    for minor in [38, 21] {
        let (mut c, server) = start(ProtocolVersion::new(1, minor), table.clone()).await;
        let mut out = Vec::new();
        assert_eq!(c.nar_from_path(&sp("a"), &mut out).await.unwrap(), nar.len() as u64);
        assert_eq!(out, nar);
        let mut exported = Vec::new();
        c.export_path(&sp("a"), &mut exported).await.unwrap();
        assert_eq!(exported, export);
        let import = vec![1u8; 100_000];
        assert_eq!(c.import_paths(&mut &import[..]).await.unwrap(), [sp("a")]);
        assert!(c.is_valid_path(&sp("a")).await.unwrap(), "in step after the streams");
        let seen = finish(c, server).await;
        assert_eq!(seen[2].payload, import);
    }
}

/// A daemon error ends the operation and leaves the connection usable; so does a server that
/// fails without reading the payload (it is skipped), and a local source that fails mid-stream.
#[tokio::test]
async fn errors_keep_the_connection_in_step() {
    let nar = nar_of(&vec![1u8; 500_000]);
    let info = sample_info("p", &nar);
    let table = vec![
        (Request::IsValidPath(IsValidPath { path: sp("bad") }), Answer::Error("path is bad".into())),
        (
            Request::AddToStoreNar(AddToStoreNar { info: info.clone(), repair: false, dont_check_sigs: false }),
            Answer::ErrorUnread("no space left".into()),
        ),
        answer(IsValidPath { path: sp("a") }, Response::IsValidPath(true)),
    ];
    let (mut c, server) = start(V38, table).await;
    let err = c.is_valid_path(&sp("bad")).await.unwrap_err();
    assert!(matches!(&err, ProtocolError::Remote { message, .. } if message == "path is bad"), "{err}");
    let err = c.add_to_store_nar(&info, &mut &nar[..], false, false).await.unwrap_err();
    assert!(matches!(&err, ProtocolError::Remote { message, .. } if message == "no space left"), "{err}");
    assert!(c.is_valid_path(&sp("a")).await.unwrap());

    // A source that fails half-way: the stream is cut short, the daemon refuses it, and the
    // local error is what the caller sees.
    let mut failing = FailingReader { data: nar.clone(), pos: 0, fail_at: 100_000 };
    let err = c.add_to_store_nar(&info, &mut failing, false, false).await.unwrap_err();
    assert!(matches!(err, ProtocolError::Source(_)), "{err}");
    assert!(!c.is_broken());
    // A malformed NAR is caught before it is all sent.
    let mut bad = nar.clone();
    bad[8] = b'X';
    let err = c.add_to_store_nar(&info, &mut &bad[..], false, false).await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(_)), "{err}");
    assert!(c.is_valid_path(&sp("a")).await.unwrap());
    finish(c, server).await;
}

/// Log messages reach the client's sink, in order, before the reply.
#[tokio::test]
async fn log_messages_reach_the_sink() {
    let table = vec![(Request::IsValidPath(IsValidPath { path: sp("a") }), Answer::LogThen(Response::IsValidPath(false)))];
    let (c, server) = start(V38, table).await;
    let mut c = c.with_sink(worker_protocol::logger::LogCollector::new(1 << 20));
    assert!(!c.is_valid_path(&sp("a")).await.unwrap());
    assert_eq!(c.sink().lines(), ["checking a", "done"]);
    assert_eq!(c.sink().messages.len(), 4, "two lines, an activity start and stop");
    finish(c, server).await;
}

/// A call abandoned half-way leaves the connection unusable, and says so.
#[tokio::test]
async fn abandoned_calls_break_the_connection() {
    let table = vec![(Request::IsValidPath(IsValidPath { path: sp("a") }), Answer::Stall)];
    let (mut c, server) = start(V38, table).await;
    let path = sp("a");
    let call = c.is_valid_path(&path);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(200), call).await.is_err());
    assert!(c.is_broken());
    assert!(matches!(c.is_valid_path(&sp("a")).await, Err(ProtocolError::ConnectionBroken)));
    drop(c);
    server.abort();
}
