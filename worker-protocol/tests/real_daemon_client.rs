//! `ClientConnection` against the real Nix 2.8 `nix-daemon` (worker protocol 1.34) on an
//! isolated store: every result is compared with what the real `nix`/`nix-store` commands report
//! through the same daemon. These tests need Nix installed (`scripts/test-all.sh` installs it)
//! and fail without it.

mod nix_env;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::symlink;

use nix_env::*;
use nix_formats::derivation::{fill_output_paths, Derivation, DerivationOutput, DirectoryReader, DrvHashCache};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::{StoreDir, StorePath};
use worker_protocol::logger::LogCollector;
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};
use worker_protocol::ops::request::gc::{CollectGarbage, GcAction};
use worker_protocol::ops::{BasicDerivation, ClientOptions};
use worker_protocol::types::BuildMode;
use worker_protocol::{ProtocolError, ProtocolVersion};

const NAR_SHA256: CaMethodAlgo = CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 };
const FLAT_SHA256: CaMethodAlgo = CaMethodAlgo { method: IngestionMethod::Flat, algo: Algorithm::Sha256 };
const TEXT_SHA256: CaMethodAlgo = CaMethodAlgo { method: IngestionMethod::Text, algo: Algorithm::Sha256 };

/// A small tree: a file, an executable, a symlink and a subdirectory.
fn make_tree(root: &std::path::Path) -> std::path::PathBuf {
    let tree = root.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("file.txt"), b"hello\n").unwrap();
    std::fs::write(tree.join("sub/run.sh"), b"#!/bin/sh\necho run\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tree.join("sub/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("file.txt", tree.join("link")).unwrap();
    tree
}

fn dump(path: &std::path::Path) -> Vec<u8> {
    let mut nar = Vec::new();
    nix_formats::nar::dump_path(path, &mut nar).unwrap();
    nar
}

fn nar_of(contents: &[u8]) -> Vec<u8> {
    let mut w = nix_formats::nar::Writer::new(Vec::new());
    w.regular_bytes(false, contents).unwrap();
    w.finish().unwrap()
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::to_owned).collect()
}

/// The path of `name` for an `AddToStoreNar` test: a fixed-output path of the NAR (any valid
/// path will do; the daemon trusts root and is told not to check signatures).
fn nar_path(store: &StoreDir, name: &str, nar: &[u8]) -> StorePath {
    store.make_fixed_output_path(name, true, &Hash::of(Algorithm::Sha256, nar), [], false).unwrap()
}

#[tokio::test]
async fn handshake_options_and_adding() {
    let nix = NixDaemon::start().await;
    let store = nix.store_dir();
    let mut c = nix.connect().await;
    assert_eq!(c.version(), ProtocolVersion::new(1, 34));
    assert_eq!(c.daemon_nix_version(), Some("2.8.0"));
    assert_eq!(c.remote_trusts_us(), None, "1.34 carries no trust flag");
    c.set_options(&ClientOptions::default()).await.unwrap();
    assert!(c.query_all_valid_paths().await.unwrap().is_empty());

    // AddToStore, NAR method: the path `nix-store --add` gives, the info `nix path-info` gives.
    let tree = make_tree(nix.dir.path());
    let nar = dump(&tree);
    let tree_info = c.add_to_store("tree", NAR_SHA256, &BTreeSet::new(), false, &mut &nar[..]).await.unwrap();
    let added = nix.nix_ok("nix-store", &["--add", tree.to_str().unwrap()]).await;
    assert_eq!(added.trim(), nix.print(&tree_info.path));
    assert_eq!(tree_info.nar_hash, Hash::of(Algorithm::Sha256, &nar));
    nix.assert_info_matches_nix(&tree_info).await;

    // Flat: `nix-store --add-fixed sha256`.
    let file = nix.path("home/hello.txt");
    std::fs::write(&file, b"flat contents\n").unwrap();
    let flat_info = c.add_to_store("hello.txt", FLAT_SHA256, &BTreeSet::new(), false, &mut &b"flat contents\n"[..]).await.unwrap();
    let added = nix.nix_ok("nix-store", &["--add-fixed", "sha256", file.to_str().unwrap()]).await;
    assert_eq!(added.trim(), nix.print(&flat_info.path));
    nix.assert_info_matches_nix(&flat_info).await;

    // Text with a reference, by AddToStore and by AddTextToStore.
    let refs = BTreeSet::from([tree_info.path.clone()]);
    let text = format!("see {}\n", nix.print(&tree_info.path));
    let text_info = c.add_to_store("note", TEXT_SHA256, &refs, false, &mut text.as_bytes()).await.unwrap();
    let expected = store.make_text_path("note", &Hash::of(Algorithm::Sha256, text.as_bytes()), &refs).unwrap();
    assert_eq!(text_info.path, expected);
    assert_eq!(text_info.references, refs);
    nix.assert_info_matches_nix(&text_info).await;
    let text2 = c.add_text_to_store("note2", b"plain\n", &BTreeSet::new()).await.unwrap();
    assert_eq!(text2, store.make_text_path("note2", &Hash::of(Algorithm::Sha256, b"plain\n"), []).unwrap());

    // Queries, against the CLI.
    let printed = |p: &StorePath| nix.print(p);
    let bogus = store.make_text_path("bogus", &Hash::of(Algorithm::Sha256, b"x"), []).unwrap();
    let asked = BTreeSet::from([tree_info.path.clone(), flat_info.path.clone(), bogus.clone()]);
    let valid = c.query_valid_paths(&asked, false).await.unwrap();
    assert_eq!(valid, BTreeSet::from([tree_info.path.clone(), flat_info.path.clone()]));
    assert!(!c.is_valid_path(&bogus).await.unwrap());
    assert_eq!(c.query_path_info(&bogus).await.unwrap(), None);
    let referrers = c.query_referrers(&tree_info.path).await.unwrap();
    let cli = nix.nix_ok("nix-store", &["-q", "--referrers", &printed(&tree_info.path)]).await;
    assert_eq!(referrers.iter().map(printed).collect::<BTreeSet<_>>(), lines(&cli));
    let cli = nix.nix_ok("nix-store", &["-q", "--references", &printed(&text_info.path)]).await;
    assert_eq!(text_info.references.iter().map(printed).collect::<BTreeSet<_>>(), lines(&cli));
    assert_eq!(c.query_path_from_hash_part(tree_info.path.hash_part()).await.unwrap(), Some(tree_info.path.clone()));
    assert_eq!(c.query_path_from_hash_part(bogus.hash_part()).await.unwrap(), None);
    let all = c.query_all_valid_paths().await.unwrap();
    let cli = nix.nix_ok("nix", &["path-info", "--all"]).await;
    assert_eq!(all.iter().map(printed).collect::<BTreeSet<_>>(), lines(&cli));
    assert_eq!(all.len(), 4);

    // NarFromPath: the bytes of `nix-store --dump` (and of our own serialisation).
    let mut ours = Vec::new();
    let size = c.nar_from_path(&tree_info.path, &mut ours).await.unwrap();
    assert_eq!(ours, nix.nix_bytes("nix-store", &["--dump", &printed(&tree_info.path)]).await);
    assert_eq!((ours, size), (nar.clone(), tree_info.nar_size));

    // A daemon error carries the daemon's message and leaves the connection usable. (Not
    // `NarFromPath`: Nix 2.8 sends `STDERR_LAST` before it looks at the path, so its error
    // arrives where the NAR should be.)
    let err = c.ensure_path(&bogus).await.unwrap_err();
    match err {
        ProtocolError::Remote { message, .. } => assert!(message.contains("does not exist and cannot be created"), "{message}"),
        other => panic!("{other}"),
    }
    assert!(c.is_valid_path(&tree_info.path).await.unwrap());
}

#[tokio::test]
async fn add_to_store_nar_and_multiple() {
    let nix = NixDaemon::start().await;
    let store = nix.store_dir();
    let mut c = nix.connect().await;

    let nar_a = nar_of(b"content of a\n");
    let mut info_a = ValidPathInfo::new(nar_path(&store, "a", &nar_a), Hash::of(Algorithm::Sha256, &nar_a));
    info_a.nar_size = nar_a.len() as u64;
    info_a.sigs.insert("test-key:c2lnbmF0dXJlIG9mIGE=".into());
    info_a.registration_time = 1_600_000_000;
    c.add_to_store_nar(&info_a, &mut &nar_a[..], false, true).await.unwrap();
    let got = c.query_path_info(&info_a.path).await.unwrap().unwrap();
    assert_eq!((&got.nar_hash, got.nar_size, &got.sigs), (&info_a.nar_hash, info_a.nar_size, &info_a.sigs));
    nix.assert_info_matches_nix(&got).await;
    assert_eq!(nix.nix_bytes("nix-store", &["--dump", &nix.print(&info_a.path)]).await, nar_a);

    // Two paths in one stream, the second referring to the first.
    let nar_b = nar_of(format!("uses {}\n", nix.print(&info_a.path)).as_bytes());
    let nar_c = nar_of(&vec![b'c'; 100_000]);
    let mut info_b = ValidPathInfo::new(nar_path(&store, "b", &nar_b), Hash::of(Algorithm::Sha256, &nar_b));
    info_b.nar_size = nar_b.len() as u64;
    info_b.references.insert(info_a.path.clone());
    let mut info_c = ValidPathInfo::new(nar_path(&store, "c", &nar_c), Hash::of(Algorithm::Sha256, &nar_c));
    info_c.nar_size = nar_c.len() as u64;
    let items = vec![(info_b.clone(), &nar_b[..]), (info_c.clone(), &nar_c[..])];
    c.add_multiple_to_store(items, false, true).await.unwrap();
    for (info, nar) in [(&info_b, &nar_b), (&info_c, &nar_c)] {
        let got = c.query_path_info(&info.path).await.unwrap().unwrap();
        assert_eq!((&got.nar_hash, &got.references), (&info.nar_hash, &info.references));
        nix.assert_info_matches_nix(&got).await;
        assert_eq!(&nix.nix_bytes("nix-store", &["--dump", &nix.print(&info.path)]).await, nar);
    }
    let cli = nix.nix_ok("nix-store", &["-q", "--references", &nix.print(&info_b.path)]).await;
    assert_eq!(lines(&cli), BTreeSet::from([nix.print(&info_a.path)]));

    // A NAR that does not match its info is refused by the daemon; the connection goes on.
    let mut wrong = info_c.clone();
    wrong.path = nar_path(&store, "wrong", &nar_a);
    let err = c.add_to_store_nar(&wrong, &mut &nar_a[..], false, true).await.unwrap_err();
    assert!(matches!(&err, ProtocolError::Remote { message, .. } if message.contains("hash mismatch")), "{err}");
    assert!(c.is_valid_path(&info_c.path).await.unwrap());
}

/// Adds a text file `name` through a connection of its own, closed at once, so that the path is
/// no temporary root of the test's connection.
async fn add_text_elsewhere(nix: &NixDaemon, name: &str) -> StorePath {
    let mut c = nix.connect().await;
    c.add_text_to_store(name, format!("{name}\n").as_bytes(), &BTreeSet::new()).await.unwrap()
}

/// Deletes `path`, retrying while the daemon's process of a closed connection still holds it.
async fn delete_eventually<K: worker_protocol::logger::LogSink>(c: &mut worker_protocol::connection::UnixClientConnection<K>, path: &StorePath) {
    for _ in 0..200 {
        match c.delete_paths(&BTreeSet::from([path.clone()])).await {
            Ok(_) => return,
            Err(ProtocolError::Remote { message, .. }) if message.contains("still alive") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{path} stays alive");
}

/// A derivation with one output whose builder writes `hi`.
fn trivial_derivation(store: &StoreDir, name: &str) -> Derivation {
    let system = format!("{}-linux", std::env::consts::ARCH);
    let mut drv = Derivation {
        name: name.into(),
        outputs: BTreeMap::from([("out".into(), DerivationOutput::Deferred)]),
        input_drvs: BTreeMap::new(),
        input_srcs: BTreeSet::new(),
        system: system.clone().into_bytes(),
        builder: b"/bin/sh".to_vec(),
        args: vec![b"-c".to_vec(), b"echo hi > $out".to_vec()],
        env: BTreeMap::from([
            (b"builder".to_vec(), b"/bin/sh".to_vec()),
            (b"name".to_vec(), name.as_bytes().to_vec()),
            (b"system".to_vec(), system.into_bytes()),
        ]),
    };
    let mut reader = DirectoryReader::new(store.as_str(), store.clone());
    fill_output_paths(&mut drv, store, &mut DrvHashCache::new(), &mut reader).unwrap();
    drv
}

#[tokio::test]
async fn build_a_trivial_derivation() {
    let nix = NixDaemon::start().await;
    let store = nix.store_dir();
    let mut c = nix.connect().await.with_sink(LogCollector::new(1 << 20));
    let drv = trivial_derivation(&store, "hello");
    let drv_path = drv.drv_path(&store).unwrap();
    let out_path = drv.output_paths(&store).unwrap()["out"].clone().unwrap();
    let aterm = drv.to_aterm(&store).unwrap();
    let added = c.add_text_to_store(&format!("{}.drv", drv.name), &aterm, &drv.references()).await.unwrap();
    assert_eq!(added, drv_path);
    let cli = nix.nix_ok("nix-store", &["-q", "--outputs", &nix.print(&drv_path)]).await;
    assert_eq!(cli.trim(), nix.print(&out_path));
    let map = c.query_derivation_output_map(&drv_path).await.unwrap();
    assert_eq!(map, BTreeMap::from([("out".to_owned(), Some(out_path.clone()))]));

    let target = DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv_path.clone()), outputs: OutputsSpec::All };
    let missing = c.query_missing(std::slice::from_ref(&target)).await.unwrap();
    assert_eq!(missing.will_build, BTreeSet::from([drv_path.clone()]));
    assert!(!c.is_valid_path(&out_path).await.unwrap());

    c.build_paths(std::slice::from_ref(&target), BuildMode::Normal).await.unwrap();
    assert!(c.is_valid_path(&out_path).await.unwrap());
    let mut nar = Vec::new();
    c.nar_from_path(&out_path, &mut nar).await.unwrap();
    assert_eq!(nar, nar_of(b"hi\n"));
    assert_eq!(nar, nix.nix_bytes("nix-store", &["--dump", &nix.print(&out_path)]).await);
    let info = c.query_path_info(&out_path).await.unwrap().unwrap();
    assert_eq!(info.deriver.as_ref(), Some(&drv_path));
    assert!(info.ultimate);
    nix.assert_info_matches_nix(&info).await;
    assert_eq!(c.query_valid_derivers(&out_path).await.unwrap(), BTreeSet::from([drv_path.clone()]));
    let realised = nix.nix_ok("nix-store", &["--realise", &nix.print(&drv_path)]).await;
    assert_eq!(realised.trim(), nix.print(&out_path));

    // Built already: the keyed result says so.
    let results = c.build_paths_with_results(std::slice::from_ref(&target), BuildMode::Normal).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].path, target);
    assert!(results[0].result.status.is_success(), "{:?}", results[0].result);

    // BuildDerivation: a derivation sent whole, never added to the store.
    let direct = trivial_derivation(&store, "direct");
    let direct_path = direct.drv_path(&store).unwrap();
    let direct_out = direct.output_paths(&store).unwrap()["out"].clone().unwrap();
    let result = c.build_derivation(&direct_path, &BasicDerivation::from(direct.clone()), BuildMode::Normal).await.unwrap();
    assert!(result.status.is_success(), "{result:?}");
    assert!(!c.is_valid_path(&direct_path).await.unwrap());
    assert_eq!(nix.nix_bytes("nix-store", &["--dump", &nix.print(&direct_out)]).await, nar_of(b"hi\n"));

    // No substituters: nothing to substitute.
    let outs = BTreeSet::from([out_path.clone(), direct_out.clone()]);
    assert!(c.query_substitutable_paths(&outs).await.unwrap().is_empty());
    let with_ca = outs.iter().map(|p| (p.clone(), None)).collect();
    assert!(c.query_substitutable_path_infos(&with_ca).await.unwrap().is_empty());

    // A build log for a derivation that has none yet, stored and read back by the CLI.
    let other = trivial_derivation(&store, "other");
    let other_path = c.add_text_to_store("other.drv", &other.to_aterm(&store).unwrap(), &BTreeSet::new()).await.unwrap();
    c.add_build_log(&other_path, &mut &b"a log line\n"[..]).await.unwrap();
    let log = nix.nix_ok("nix-store", &["--read-log", &nix.print(&other_path)]).await;
    assert_eq!(log, "a log line\n");
}

/// Realisations need `ca-derivations` (Nix 2.8's daemon crashes on them otherwise).
#[tokio::test]
async fn realisations() {
    let nix = NixDaemon::start_with("experimental-features = nix-command ca-derivations\n").await;
    let mut c = nix.connect().await;
    let path = c.add_text_to_store("realised", b"realised\n", &BTreeSet::new()).await.unwrap();
    let id = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"some derivation"), output_name: "out".into() };
    assert_eq!(c.query_realisation(&id).await.unwrap(), None);
    let mut realisation = Realisation::new(id.clone(), path);
    realisation.signatures.insert("test-1:c2lnbmF0dXJl".into());
    c.register_drv_output(&realisation).await.unwrap();
    assert_eq!(c.query_realisation(&id).await.unwrap(), Some(realisation.clone()));
    // At 1.30 the daemon sends only the output path.
    let mut old = nix.connect_at(ProtocolVersion::new(1, 30)).await;
    let got = old.query_realisation(&id).await.unwrap().unwrap();
    assert_eq!((&got.id, &got.out_path), (&realisation.id, &realisation.out_path));
    assert!(got.signatures.is_empty());
}

#[tokio::test]
async fn garbage_collection_and_roots() {
    let nix = NixDaemon::start().await;
    // Paths added through a connection are temporary roots while it lasts: add them through
    // one that is closed at once.
    let mut paths = Vec::new();
    for name in ["kept", "linked", "dead", "doomed"] {
        paths.push(add_text_elsewhere(&nix, name).await);
    }
    let [kept, linked, dead, doomed] = <[StorePath; 4]>::try_from(paths).unwrap();
    let mut c = nix.connect().await;
    c.add_temp_root(&kept).await.unwrap();
    let link = nix.path("home/result");
    symlink(nix.print(&linked), &link).unwrap();
    c.add_indirect_root(link.to_str().unwrap()).await.unwrap();

    let roots = c.find_roots().await.unwrap();
    assert!(roots[&linked].contains(link.to_str().unwrap()), "{roots:?}");
    let cli = nix.nix_ok("nix-store", &["--gc", "--print-roots"]).await;
    assert!(cli.contains(&format!("{} -> {}", link.display(), nix.print(&linked))), "{cli}");

    let list = |action| CollectGarbage { action, paths_to_delete: BTreeSet::new(), ignore_liveness: false, max_freed: u64::MAX };
    let expected = BTreeSet::from([nix.print(&dead), nix.print(&doomed)]);
    let mut dead_paths = BTreeSet::new();
    // The daemon's process for the closed connection may take a moment to go, with its roots.
    for _ in 0..200 {
        dead_paths = c.collect_garbage(&list(GcAction::ReturnDead)).await.unwrap().paths;
        if dead_paths == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(dead_paths, expected);
    let live_paths = c.collect_garbage(&list(GcAction::ReturnLive)).await.unwrap().paths;
    assert!(live_paths.contains(&nix.print(&kept)) && live_paths.contains(&nix.print(&linked)));
    let cli = nix.nix_ok("nix-store", &["--gc", "--print-dead"]).await;
    assert_eq!(lines(&cli), dead_paths, "our connection's temporary root holds for other clients");

    // Deleting a live path is refused; a dead one goes.
    let err = c.delete_paths(&BTreeSet::from([kept.clone()])).await.unwrap_err();
    assert!(matches!(&err, ProtocolError::Remote { message, .. } if message.contains("still alive")), "{err}");
    let result = c.delete_paths(&BTreeSet::from([doomed.clone()])).await.unwrap();
    assert_eq!(result.paths, BTreeSet::from([nix.print(&doomed)]));
    assert!(!c.is_valid_path(&doomed).await.unwrap());
    let deleted = c.collect_garbage(&list(GcAction::DeleteDead)).await.unwrap();
    assert_eq!(deleted.paths, BTreeSet::from([nix.print(&dead)]));
    let all = c.query_all_valid_paths().await.unwrap();
    assert_eq!(all, BTreeSet::from([kept.clone(), linked.clone()]));
    let cli = nix.nix_ok("nix", &["path-info", "--all"]).await;
    assert_eq!(lines(&cli), all.iter().map(|p| nix.print(p)).collect());
}

#[tokio::test]
async fn maintenance_signatures_export_and_import() {
    let nix = NixDaemon::start().await;
    let path = add_text_elsewhere(&nix, "signed").await;
    let mut c = nix.connect().await.with_sink(LogCollector::new(1 << 20));
    assert!(!c.verify_store(false, false).await.unwrap());
    assert!(!c.verify_store(true, false).await.unwrap());
    assert!(c.sink().lines().iter().any(|l| l.contains("checking")), "{:?}", c.sink().lines());
    c.optimise_store().await.unwrap();
    c.ensure_path(&path).await.unwrap();

    let sig = "cache.example-1:YmFzZTY0IHNpZ25hdHVyZQ==".to_owned();
    c.add_signatures(&path, &BTreeSet::from([sig.clone()])).await.unwrap();
    let info = c.query_path_info(&path).await.unwrap().unwrap();
    assert_eq!(info.sigs, BTreeSet::from([sig.clone()]));
    nix.assert_info_matches_nix(&info).await;

    // ExportPath gives one record of `nix-store --export` (without its leading 1 and the final 0).
    let mut exported = Vec::new();
    c.export_path(&path, &mut exported).await.unwrap();
    let cli = nix.nix_bytes("nix-store", &["--export", &nix.print(&path)]).await;
    assert_eq!(&cli[8..cli.len() - 8], &exported[..]);
    assert_eq!(&cli[..8], &1u64.to_le_bytes());

    // ImportPaths brings it back after deletion (through a new connection: this one made the
    // path a temporary root).
    drop(c);
    let mut c = nix.connect().await;
    delete_eventually(&mut c, &path).await;
    assert!(!c.is_valid_path(&path).await.unwrap());
    assert_eq!(c.import_paths(&mut &cli[..]).await.unwrap(), std::slice::from_ref(&path));
    assert!(c.is_valid_path(&path).await.unwrap());
    assert_eq!(nix.nix_bytes("nix-store", &["--dump", &nix.print(&path)]).await, nar_of(b"signed\n"));
    assert_eq!(c.query_path_info(&path).await.unwrap().unwrap().nar_hash, info.nar_hash);
}
