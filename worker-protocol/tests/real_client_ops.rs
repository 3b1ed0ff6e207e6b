//! The real Nix 2.8 client (worker protocol 1.34) against a fake daemon built on
//! `worker_protocol::ops`: each request the client sends is decoded and checked field by field,
//! and each typed reply we encode must be understood by the client (its output shows it). Every
//! client runs on an isolated store in a temporary directory. These tests need Nix installed
//! (`scripts/test-all.sh` installs it) and fail without it.

mod fake_daemon;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fake_daemon::*;
use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::derivation::Derivation;
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::SecretKey;
use worker_protocol::ops::payload::{decode_multiple_item_info, ExportTrailer};
use worker_protocol::ops::request::gc::GcAction;
use worker_protocol::ops::request::{add::AddToStore, add::IngestionMethod};
use worker_protocol::ops::response::{AddToStoreReply, GcResult, MissingPaths};
use worker_protocol::ops::{Request, Response};
use worker_protocol::ser::encode_to_bytes;
use worker_protocol::types::{BuildMode, UnkeyedValidPathInfo};
use worker_protocol::wire::Decoder;
use worker_protocol::{ProtocolVersion, WireCtx};

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed; run scripts/test-all.sh (it installs Nix)");
}

fn nar_of(contents: &[u8]) -> Vec<u8> {
    let mut w = nix_formats::nar::Writer::new(Vec::new());
    w.regular_bytes(false, contents).unwrap();
    w.finish().unwrap()
}

fn info_for(nar: &[u8]) -> UnkeyedValidPathInfo {
    let mut info = UnkeyedValidPathInfo::new(Hash::of(Algorithm::Sha256, nar));
    info.nar_size = nar.len() as u64;
    info
}

/// Runs `program args` against the fake daemon.
async fn nix(env: &ClientEnv, program: &str, args: &[&str]) -> std::process::Output {
    require(program);
    let mut cmd = env.nix(program);
    cmd.args(args);
    run(cmd, None).await
}

fn lines(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn set_options_ping_and_validity() {
    let env = ClientEnv::new();
    let valid = env.store_path('a', "valid");
    let v = valid.clone();
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(move |r, _| match r {
            Request::IsValidPath(q) => Reply::Typed(Response::IsValidPath(q.path == v)),
            other => only_set_options(other),
        }),
    );

    let out = nix(&env, "nix", &["store", "ping"]).await;
    check_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Version: casnix-test"), "the client read our handshake info: {stderr}");

    let out = nix(&env, "nix-store", &["--check-validity", "-K", "--option", "connect-timeout", "7", &env.print(&valid)]).await;
    check_success(&out);
    let invalid = env.store_path('b', "invalid");
    let out = nix(&env, "nix-store", &["--check-validity", &env.print(&invalid)]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid"));

    let records = daemon.finish();
    assert!(records.iter().all(|r| r.version == ProtocolVersion::new(1, 34)));
    let options: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.request {
            Request::SetOptions(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(options.len(), 3, "one SetOptions per connection");
    let with_flags = &options[1];
    assert!(with_flags.keep_failed && !options[0].keep_failed);
    assert_eq!(with_flags.overrides, BTreeMap::from([("connect-timeout".to_owned(), "7".to_owned())]));
    assert!(with_flags.use_build_hook && with_flags.use_substitutes);
    assert_eq!(with_flags.build_cores as usize, std::thread::available_parallelism().unwrap().get());
    let asked: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.request {
            Request::IsValidPath(q) => Some(q.path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [valid, invalid]);
}

#[tokio::test]
async fn path_info_and_referrers() {
    let env = ClientEnv::new();
    let path = env.store_path('c', "hello");
    let (r1, r2, deriver) = (env.store_path('d', "dep-1"), env.store_path('m', "dep-2"), env.store_path('f', "hello.drv"));
    let nar = nar_of(b"hi");
    let mut info = info_for(&nar);
    info.references = [r1.clone(), r2.clone()].into();
    info.deriver = Some(deriver.clone());
    info.sigs = ["cache.example.org-1:c2lnbmF0dXJl".to_owned()].into();
    info.registration_time = 1_700_000_000;
    let (p, i, r) = (path.clone(), info.clone(), r1.clone());
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(move |req, _| match req {
            Request::QueryPathInfo(q) => Reply::Typed(Response::QueryPathInfo((q.path == p).then(|| i.clone()))),
            Request::QueryReferrers(q) if q.path == p => Reply::Typed(Response::QueryReferrers([r.clone()].into())),
            // `nix path-info` tries to realise a path that is not valid.
            Request::QueryMissing(_) => Reply::Typed(Response::QueryMissing(MissingPaths::default())),
            Request::BuildPaths(_) => Reply::Typed(Response::BuildPaths),
            other => only_set_options(other),
        }),
    );

    let out = nix(&env, "nix-store", &["-q", "--references", &env.print(&path)]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&r1), env.print(&r2)]);

    let out = nix(&env, "nix", &["path-info", "--json", &env.print(&path)]).await;
    check_success(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &json[0];
    assert_eq!(entry["path"], env.print(&path));
    assert_eq!(entry["narSize"], nar.len());
    assert_eq!(entry["narHash"], info.nar_hash.to_sri());
    assert_eq!(entry["deriver"], env.print(&deriver));
    assert_eq!(entry["registrationTime"], 1_700_000_000);
    assert_eq!(entry["signatures"][0], "cache.example.org-1:c2lnbmF0dXJl");
    assert_eq!(entry["references"].as_array().unwrap().len(), 2);

    let other = env.store_path('g', "missing");
    let out = nix(&env, "nix", &["path-info", &env.print(&other)]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid"), "{}", String::from_utf8_lossy(&out.stderr));

    let out = nix(&env, "nix-store", &["-q", "--referrers", &env.print(&path)]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&r1)]);

    let requests = daemon.finish().into_iter().map(|r| r.request).collect::<Vec<_>>();
    let queried: BTreeSet<_> = requests
        .iter()
        .filter_map(|r| match r {
            Request::QueryPathInfo(q) => Some(q.path.clone()),
            _ => None,
        })
        .collect();
    assert!(queried.contains(&path) && queried.contains(&other), "{queried:?}");
    assert!(requests.iter().any(|r| matches!(r, Request::QueryReferrers(q) if q.path == path)));
}

#[tokio::test]
async fn add_to_store_forms() {
    let env = ClientEnv::new();
    let file = env.path("home/hello.txt");
    std::fs::write(&file, b"hello\n").unwrap();
    let store_dir = env.store_dir();
    let sd = store_dir.clone();
    let daemon = FakeDaemon::start(
        &env.socket(),
        store_dir.clone(),
        Arc::new(move |req, payload| match req {
            Request::AddToStore(AddToStore::Framed(f)) => {
                let hash = Hash::of(f.method.algo, payload);
                let (method, nar) = match f.method.method {
                    IngestionMethod::Nar => (Method::Nar, payload.to_vec()),
                    IngestionMethod::Text => (Method::Text, nar_of(payload)),
                    other => panic!("unexpected method {other:?}"),
                };
                let ca = ContentAddress { method, hash };
                let path = ca.store_path(&sd, &f.name, f.references.iter(), false).unwrap();
                let mut info = info_for(&nar).with_path(path);
                info.references = f.references.clone();
                info.ca = Some(ca);
                Reply::Typed(Response::AddToStore(AddToStoreReply::Info(info)))
            }
            Request::AddToStoreNar(_) => Reply::Typed(Response::AddToStoreNar),
            other => only_set_options(other),
        }),
    );

    // `nix-store --add`: the framed form, a NAR of the file.
    let out = nix(&env, "nix-store", &["--add", file.to_str().unwrap()]).await;
    check_success(&out);
    let expected_nar = nar_of(b"hello\n");
    let nar_path = ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, &expected_nar) }
        .store_path(&store_dir, "hello.txt", [], false)
        .unwrap();
    assert_eq!(lines(&out), [env.print(&nar_path)], "the client read our ValidPathInfo");

    // `nix store add-file`: the client computes the path and sends AddToStoreNar.
    let out = nix(&env, "nix", &["store", "add-file", file.to_str().unwrap()]).await;
    check_success(&out);

    // `nix-instantiate`: the .drv goes in as text, its bytes framed as they are.
    let expr = "derivation { name = \"x\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo hi\" ]; }";
    let out = nix(&env, "nix-instantiate", &["-E", expr]).await;
    check_success(&out);

    let records = daemon.finish();
    let mut adds = records.iter().filter(|r| !matches!(r.request, Request::SetOptions(_)));
    let first = adds.next().unwrap();
    let Request::AddToStore(AddToStore::Framed(f)) = &first.request else { panic!("{:?}", first.request) };
    assert_eq!((f.name.as_str(), f.method.to_string().as_str(), f.repair), ("hello.txt", "fixed:r:sha256", false));
    assert!(f.references.is_empty());
    assert_eq!(first.payload, expected_nar);

    let second = adds.next().unwrap();
    let Request::AddToStoreNar(a) = &second.request else { panic!("{:?}", second.request) };
    let flat = ContentAddress { method: Method::Flat, hash: Hash::of(Algorithm::Sha256, b"hello\n") };
    assert_eq!(a.info.path, flat.store_path(&store_dir, "hello.txt", [], false).unwrap());
    assert_eq!(a.info.ca, Some(flat));
    assert_eq!(a.info.nar_hash, Hash::of(Algorithm::Sha256, &expected_nar));
    assert_eq!(a.info.nar_size, expected_nar.len() as u64);
    assert_eq!(second.payload, expected_nar, "the NAR came framed (1.23 and later)");
    assert!(!a.repair);

    let third = adds.next().unwrap();
    let Request::AddToStore(AddToStore::Framed(f)) = &third.request else { panic!("{:?}", third.request) };
    assert_eq!((f.name.as_str(), f.method.to_string().as_str()), ("x.drv", "text:sha256"));
    let drv = Derivation::parse_aterm(&third.payload, "x", &store_dir).unwrap();
    assert_eq!((drv.builder.as_slice(), drv.args.len()), (&b"/bin/sh"[..], 2));
    let drv_path = store_dir.make_text_path("x.drv", &Hash::of(Algorithm::Sha256, &third.payload), &BTreeSet::new()).unwrap();
    assert_eq!(lines(&out), [env.print(&drv_path)]);
    assert!(adds.next().is_none());
}

#[tokio::test]
async fn garbage_collection_and_roots() {
    let env = ClientEnv::new();
    let path = env.store_path('h', "garbage");
    let live = env.store_path('i', "live");
    let link = env.path("home/result").to_str().unwrap().to_owned();
    let (p, l, lk, sd) = (path.clone(), live.clone(), link.clone(), env.store_dir());
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(move |req, _| match req {
            Request::CollectGarbage(gc) => {
                let listed = match gc.action {
                    GcAction::ReturnLive => &l,
                    _ => &p,
                };
                let result = GcResult { paths: [sd.print(listed)].into(), bytes_freed: 3 << 20 };
                Reply::Typed(Response::CollectGarbage(result))
            }
            Request::FindRoots(_) => Reply::Typed(Response::FindRoots([(l.clone(), [lk.clone()].into())].into())),
            other => only_set_options(other),
        }),
    );

    let out = nix(&env, "nix-store", &["--delete", &env.print(&path)]).await;
    check_success(&out);
    assert_eq!(lines(&out), ["1 store paths deleted, 3.00 MiB freed"]);
    let out = nix(&env, "nix-store", &["--gc", "--print-dead"]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&path)]);
    let out = nix(&env, "nix-store", &["--gc", "--print-live"]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&live)]);
    let out = nix(&env, "nix-store", &["--gc", "--max-freed", "100"]).await;
    check_success(&out);
    let out = nix(&env, "nix-store", &["--gc", "--print-roots"]).await;
    check_success(&out);
    assert_eq!(lines(&out), [format!("{link} -> {}", env.print(&live))]);

    let gcs: Vec<_> = daemon
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::CollectGarbage(gc) => Some((gc.action, gc.paths_to_delete, gc.ignore_liveness, gc.max_freed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        gcs,
        [
            (GcAction::DeleteSpecific, [path].into(), false, u64::MAX),
            (GcAction::ReturnDead, BTreeSet::new(), false, u64::MAX),
            (GcAction::ReturnLive, BTreeSet::new(), false, u64::MAX),
            (GcAction::DeleteDead, BTreeSet::new(), false, 100),
        ]
    );
    assert!(matches!(daemon.finish().last().map(|r| &r.request), Some(Request::FindRoots(_))));
}

#[tokio::test]
async fn realise_build_and_roots() {
    let env = ClientEnv::new();
    let out_path = env.store_path('j', "result");
    let drv_path = env.store_path('k', "result.drv");
    let (o, d) = (out_path.clone(), drv_path.clone());
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(move |req, _| {
            Reply::Typed(match req {
                Request::SetOptions(_) => Response::SetOptions,
                Request::QueryMissing(_) => Response::QueryMissing(MissingPaths {
                    will_substitute: [o.clone()].into(),
                    download_size: 10,
                    nar_size: 20,
                    ..Default::default()
                }),
                Request::BuildPaths(_) => Response::BuildPaths,
                Request::IsValidPath(_) => Response::IsValidPath(true),
                Request::AddTempRoot(_) => Response::AddTempRoot,
                Request::AddIndirectRoot(_) => Response::AddIndirectRoot,
                Request::EnsurePath(_) => Response::EnsurePath,
                Request::QueryDerivationOutputMap(q) if q.path == d => {
                    Response::QueryDerivationOutputMap([("out".to_owned(), Some(o.clone()))].into())
                }
                Request::BuildPathsWithResults(b) => Response::BuildPathsWithResults(
                    b.paths
                        .iter()
                        .map(|p| KeyedBuildResult { path: p.clone(), result: BuildResult::new(BuildStatus::Substituted, String::new()) })
                        .collect(),
                ),
                other => return only_set_options(other),
            })
        }),
    );

    let out = nix(&env, "nix-store", &["-r", &env.print(&out_path)]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&out_path)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("will be fetched"), "the client read our QueryMissing reply");

    let link = env.path("home/link").to_str().unwrap().to_owned();
    let out = nix(&env, "nix-store", &["-r", "--check", &env.print(&out_path), "--add-root", &link, "--indirect"]).await;
    check_success(&out);
    assert_eq!(lines(&out), [link.clone()]);

    // The client reads the derivation from the store directory itself.
    let aterm = format!(
        "Derive([(\"out\",\"{}\",\"\",\"\")],[],[],\"x86_64-linux\",\"/bin/sh\",[],[(\"out\",\"{}\")])",
        env.print(&out_path),
        env.print(&out_path)
    );
    std::fs::write(env.path("store").join(drv_path.to_string()), aterm).unwrap();
    let built = format!("{}!out", env.print(&drv_path));
    let out = nix(&env, "nix-store", &["-r", &built]).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&out_path)]);

    let out = nix(&env, "nix", &["build", "--no-link", &env.print(&out_path)]).await;
    check_success(&out);

    let requests = daemon.finish().into_iter().map(|r| r.request).collect::<Vec<_>>();
    let opaque = DerivedPath::Opaque(out_path.clone());
    let out_of_drv = DerivedPath::Built {
        drv_path: SingleDerivedPath::Opaque(drv_path.clone()),
        outputs: OutputsSpec::Names(["out".to_owned()].into()),
    };
    let builds: Vec<_> = requests
        .iter()
        .filter_map(|r| match r {
            Request::BuildPaths(b) => Some((b.paths.clone(), b.mode)),
            Request::BuildPathsWithResults(b) => Some((b.paths.clone(), b.mode)),
            _ => None,
        })
        .collect();
    assert_eq!(
        builds,
        [
            (vec![opaque.clone()], BuildMode::Normal),
            (vec![opaque.clone()], BuildMode::Check),
            (vec![out_of_drv.clone()], BuildMode::Normal),
            (vec![opaque.clone()], BuildMode::Normal),
        ]
    );
    let missing: Vec<_> = requests
        .iter()
        .filter_map(|r| match r {
            Request::QueryMissing(q) => Some(q.targets.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(missing[0], [opaque]);
    assert_eq!(missing.last().unwrap(), &[out_of_drv]);
    assert!(requests.iter().any(|r| matches!(r, Request::AddIndirectRoot(a) if a.link == link)));
    assert!(requests.iter().any(|r| matches!(r, Request::AddTempRoot(a) if a.path == out_path)));
    assert!(requests.iter().any(|r| matches!(r, Request::QueryDerivationOutputMap(q) if q.path == drv_path)));
}

#[tokio::test]
async fn verify_and_optimise() {
    let env = ClientEnv::new();
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(|req, _| match req {
            Request::VerifyStore(v) => Reply::Typed(Response::VerifyStore(v.repair)),
            Request::OptimiseStore(_) => Reply::Typed(Response::OptimiseStore),
            other => only_set_options(other),
        }),
    );
    check_success(&nix(&env, "nix-store", &["--verify"]).await);
    // Our reply "errors remain" makes the client fail.
    let out = nix(&env, "nix-store", &["--verify", "--check-contents", "--repair"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    check_success(&nix(&env, "nix-store", &["--optimise"]).await);
    let requests = daemon.finish().into_iter().map(|r| r.request).filter(|r| !matches!(r, Request::SetOptions(_)));
    let summary: Vec<String> = requests
        .map(|r| match r {
            Request::VerifyStore(v) => format!("verify {} {}", v.check_contents, v.repair),
            other => other.opcode().name().to_owned(),
        })
        .collect();
    assert_eq!(summary, ["verify false false", "verify true true", "OptimiseStore"]);
}

#[tokio::test]
async fn copy_sign_and_import() {
    let env = ClientEnv::new();
    let file = env.path("home/data.txt");
    std::fs::write(&file, b"some data\n").unwrap();
    // A real local store in the same directories holds the path to copy.
    let mut add = env.nix("nix-store");
    add.env("NIX_REMOTE", "local").args(["--add", file.to_str().unwrap()]);
    let out = run(add, None).await;
    check_success(&out);
    let added = env.store_dir().parse(lines(&out)[0].as_str()).unwrap();
    let nar = nar_of(b"some data\n");
    let mut added_info = info_for(&nar).with_path(added.clone());
    added_info.ca = Some(ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, &nar) });
    let (a, i) = (added.clone(), added_info.clone());
    let daemon = FakeDaemon::start(
        &env.socket(),
        env.store_dir(),
        Arc::new(move |req, _| {
            Reply::Typed(match req {
                Request::SetOptions(_) => Response::SetOptions,
                Request::QueryValidPaths(_) => Response::QueryValidPaths(BTreeSet::new()),
                Request::AddMultipleToStore(_) => Response::AddMultipleToStore,
                Request::QueryPathInfo(q) if q.path == a => Response::QueryPathInfo(Some(UnkeyedValidPathInfo::split(i.clone()).1)),
                Request::AddSignatures(_) => Response::AddSignatures,
                Request::AddToStoreNar(_) => Response::AddToStoreNar,
                Request::QueryMissing(_) => Response::QueryMissing(MissingPaths::default()),
                Request::BuildPaths(_) => Response::BuildPaths,
                other => return only_set_options(other),
            })
        }),
    );

    let sock = format!("unix://{}", env.socket().display());
    let out = nix(&env, "nix", &["copy", "--from", "local", "--to", &sock, &env.print(&added)]).await;
    check_success(&out);

    let key = SecretKey::from_seed("test-key-1", &[7; 32]).unwrap();
    let key_file = env.path("home/key");
    std::fs::write(&key_file, key.to_text()).unwrap();
    let out = nix(&env, "nix", &["store", "sign", "--key-file", key_file.to_str().unwrap(), &env.print(&added)]).await;
    check_success(&out);

    // `nix-store --import` of an export we build: AddToStoreNar with the trailer's fields.
    let imported = env.store_path('z', "imported");
    let (dep, drv) = (env.store_path('y', "dep"), env.store_path('x', "imported.drv"));
    let trailer = ExportTrailer { path: imported.clone(), references: [dep.clone()].into(), deriver: Some(drv.clone()), legacy_signature: None };
    let ctx = WireCtx::worker(ProtocolVersion::new(1, 34)).with_store_dir(env.store_dir());
    let mut export = 1u64.to_le_bytes().to_vec();
    export.extend_from_slice(&nar);
    export.extend_from_slice(&encode_to_bytes(&trailer, &ctx).unwrap());
    export.extend_from_slice(&0u64.to_le_bytes());
    let mut import = env.nix("nix-store");
    import.arg("--import");
    let out = run(import, Some(export)).await;
    check_success(&out);
    assert_eq!(lines(&out), [env.print(&imported)]);

    let records = daemon.finish();
    let find = |f: &dyn Fn(&Request) -> bool| records.iter().find(|r| f(&r.request)).cloned().unwrap();
    let valid = find(&|r| matches!(r, Request::QueryValidPaths(_)));
    let Request::QueryValidPaths(q) = &valid.request else { unreachable!() };
    assert_eq!(q.paths, [added.clone()].into());
    assert!(!q.substitute);

    // The AddMultipleToStore stream: a count, then the path info at 1.16 and the NAR.
    let multi = find(&|r| matches!(r, Request::AddMultipleToStore(_)));
    let mut d = Decoder::new(&multi.payload, ctx.limits);
    assert_eq!(d.read_u64().unwrap(), 1);
    let item = decode_multiple_item_info(&mut d, &ctx).unwrap();
    assert_eq!((&item.path, &item.nar_hash, item.nar_size), (&added, &added_info.nar_hash, nar.len() as u64));
    assert_eq!(item.ca, added_info.ca);
    assert_eq!(d.remaining(), &nar[..]);

    let signed = find(&|r| matches!(r, Request::AddSignatures(_)));
    let Request::AddSignatures(s) = &signed.request else { unreachable!() };
    assert_eq!(s.path, added);
    let mut expected = added_info.clone();
    let sig = expected.sign(&env.store_dir(), &key).unwrap();
    assert_eq!(s.sigs, [sig.to_string()].into(), "the client signed the fingerprint of our QueryPathInfo reply");

    let nar_add = find(&|r| matches!(r, Request::AddToStoreNar(_)));
    let Request::AddToStoreNar(n) = &nar_add.request else { unreachable!() };
    let expected = ValidPathInfo {
        references: [dep].into(),
        deriver: Some(drv),
        nar_size: nar.len() as u64,
        ..ValidPathInfo::new(imported, Hash::of(Algorithm::Sha256, &nar))
    };
    assert_eq!(n.info, expected);
    assert!(!n.repair && n.dont_check_sigs, "nix-store --import does not check signatures");
    assert_eq!(nar_add.payload, nar);
}
