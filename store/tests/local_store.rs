//! The local store on its own: adds of every kind, verification of claims, canonical and
//! deduplicated materialisation, queries, NARs, verification and repair, deletion.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use castore::Durability;
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;
use store::db::ClosureOptions;
use store::local::{NarToAdd, PathProblem};
use store::{Store, StoreConfig, StoreError};
use tempfile::TempDir;

fn open(root: &Path) -> Store {
    let mut config = StoreConfig::new(root.join("store").to_str().unwrap(), root.join("state"));
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

fn tree(root: &Path, files: &[(&str, &str)]) {
    for (name, contents) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

fn nar_of(path: &Path) -> Vec<u8> {
    let mut nar = Vec::new();
    nix_formats::nar::dump_path(path, &mut nar).unwrap();
    nar
}

fn info_for(store: &Store, name: &str, nar: &[u8], references: BTreeSet<StorePath>) -> ValidPathInfo {
    // A NAR-hashed content address makes the path follow from the contents.
    let hash = Hash::of(Algorithm::Sha256, nar);
    let ca = ContentAddress { method: Method::Nar, hash: hash.clone() };
    let path = ca.store_path(store.store_dir(), name, references.iter(), false).unwrap();
    let mut info = ValidPathInfo::new(path, hash);
    info.nar_size = nar.len() as u64;
    info.references = references;
    info.ca = Some(ca);
    info
}

fn setup() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    (dir, store)
}

#[test]
fn fresh_root_gets_nix_layout() {
    let (dir, _store) = setup();
    for sub in ["store", "state/db/db.sqlite", "state/gcroots", "state/profiles", "state/temproots", "state/casnix/castore"] {
        assert!(dir.path().join(sub).exists(), "{sub}");
    }
}

#[test]
fn text_flat_and_nar_adds_give_nix_paths() {
    let (dir, store) = setup();
    let text = store.add_text("hello.txt", b"hello\n", &BTreeSet::new()).unwrap();
    let sd = store.store_dir();
    assert_eq!(text.path, sd.make_text_path("hello.txt", &Hash::of(Algorithm::Sha256, b"hello\n"), []).unwrap());
    assert_eq!(std::fs::read(store.real_path(&text.path)).unwrap(), b"hello\n");

    let flat = store.add_to_store("f", Method::Flat, Algorithm::Sha1, &BTreeSet::new(), &b"flat"[..]).unwrap();
    let sha1 = Hash::of(Algorithm::Sha1, b"flat");
    assert_eq!(flat.path, sd.make_fixed_output_path("f", false, &sha1, [], false).unwrap());
    assert_eq!(flat.ca, Some(ContentAddress { method: Method::Flat, hash: sha1 }));

    let src = dir.path().join("src");
    tree(&src, &[("a", "A"), ("sub/b", "B")]);
    let added = store.add_path(&src, "src", Method::Nar, Algorithm::Sha256).unwrap();
    let nar = nar_of(&src);
    assert_eq!(added.nar_hash, Hash::of(Algorithm::Sha256, &nar));
    assert_eq!(added.nar_size, nar.len() as u64);
    assert_eq!(store.nar_from_path(&added.path, Vec::new()).unwrap(), nar);
    assert_eq!(nar_of(&store.real_path(&added.path)), nar);
    // Adding again is a no-op that returns the same info.
    assert_eq!(store.add_path(&src, "src", Method::Nar, Algorithm::Sha256).unwrap().path, added.path);
    assert_eq!(store.query_all_valid_paths().unwrap().len(), 3);
}

#[test]
fn nar_adds_with_references_and_queries() {
    let (dir, store) = setup();
    let dep = store.add_text("dep", b"dependency", &BTreeSet::new()).unwrap().path;
    let src = dir.path().join("top");
    tree(&src, &[("ref", &store.print(&dep))]);
    let nar = nar_of(&src);
    let info = info_for(&store, "top", &nar, [dep.clone()].into());
    assert!(store.add_nar(info.clone(), &nar[..], false).unwrap());
    assert!(!store.add_nar(info.clone(), &b"not read"[..], false).unwrap());
    assert_eq!(store.query_references(&info.path).unwrap(), [dep.clone()].into());
    assert_eq!(store.query_referrers(&dep).unwrap(), [info.path.clone()].into());
    assert_eq!(store.closure([&info.path], ClosureOptions::default()).unwrap(), [dep.clone(), info.path.clone()].into());
    assert_eq!(store.query_path_from_hash_part(info.path.hash_part()).unwrap(), Some(info.path.clone()));
    let stored = store.query_path_info(&info.path).unwrap().unwrap();
    assert_eq!((stored.nar_hash, stored.nar_size, stored.ca), (info.nar_hash, info.nar_size, info.ca));
    assert!(store.castore_root(&info.path).unwrap().is_some());
}

#[test]
fn batch_adds_register_together() {
    let (dir, store) = setup();
    let a_src = dir.path().join("a");
    tree(&a_src, &[("x", "a")]);
    let a_nar = nar_of(&a_src);
    let a = info_for(&store, "a", &a_nar, BTreeSet::new());
    let b_src = dir.path().join("b");
    tree(&b_src, &[("x", &store.print(&a.path))]);
    let b_nar = nar_of(&b_src);
    let b = info_for(&store, "b", &b_nar, [a.path.clone()].into());
    // Referrer first: the batch is ordered by the database.
    let added = store
        .add_nars(vec![NarToAdd { info: b.clone(), nar: &b_nar[..] }, NarToAdd { info: a.clone(), nar: &a_nar[..] }], false)
        .unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(store.query_references(&b.path).unwrap(), [a.path.clone()].into());
    let dup = store.add_nars(vec![NarToAdd { info: a.clone(), nar: &a_nar[..] }, NarToAdd { info: a, nar: &a_nar[..] }], false);
    assert!(matches!(dup, Err(StoreError::DuplicatePath(_))));
}

#[test]
fn wrong_claims_are_refused_and_leave_nothing() {
    let (dir, store) = setup();
    let src = dir.path().join("s");
    tree(&src, &[("f", "contents")]);
    let nar = nar_of(&src);
    let good = info_for(&store, "s", &nar, BTreeSet::new());

    let mut bad_hash = good.clone();
    bad_hash.nar_hash = Hash::of(Algorithm::Sha256, b"other");
    bad_hash.ca = None;
    let err = store.add_nar(bad_hash.clone(), &nar[..], false).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch(_)), "{err}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("hash mismatch importing path '{}';\n  specified: sha256:", store.print(&good.path))), "{text}");

    let mut bad_size = good.clone();
    bad_size.nar_size += 1;
    assert!(matches!(store.add_nar(bad_size, &nar[..], false), Err(StoreError::SizeMismatch { .. })));

    let mut bad_ca = good.clone();
    bad_ca.ca = Some(ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, b"x") });
    assert!(matches!(store.add_nar(bad_ca, &nar[..], false), Err(StoreError::CaHashMismatch(_))));

    let mut bad_path = good.clone();
    bad_path.path = StorePath::from_base_name(&format!("{}-other", good.path.hash_part())).unwrap();
    assert!(matches!(store.add_nar(bad_path, &nar[..], false), Err(StoreError::CaPathMismatch { .. })));

    let truncated = store.add_nar(good.clone(), &nar[..nar.len() - 8], false);
    assert!(matches!(truncated, Err(StoreError::Ingest(_))));

    assert!(store.query_all_valid_paths().unwrap().is_empty());
    assert!(!store.real_path(&good.path).exists());
    assert!(store.add_nar(good, &nar[..], false).unwrap());
}

#[test]
fn materialised_paths_are_canonical_and_share_files() {
    let (dir, store) = setup();
    let one = dir.path().join("one");
    tree(&one, &[("shared", "same bytes"), ("own", "one"), ("d/x", "x")]);
    std::fs::set_permissions(one.join("own"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("shared", one.join("link")).unwrap();
    let two = dir.path().join("two");
    tree(&two, &[("shared", "same bytes"), ("other", "two")]);
    let p1 = store.add_path(&one, "one", Method::Nar, Algorithm::Sha256).unwrap().path;
    let p2 = store.add_path(&two, "two", Method::Nar, Algorithm::Sha256).unwrap().path;
    let r1 = store.real_path(&p1);
    let r2 = store.real_path(&p2);
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&r1), 0o555);
    assert_eq!(mode(&r1.join("d")), 0o555);
    assert_eq!(mode(&r1.join("shared")), 0o444);
    assert_eq!(mode(&r1.join("own")), 0o555, "setuid dropped, executable kept");
    for p in [&r1, &r1.join("d"), &r1.join("shared"), &r1.join("own"), &r1.join("link")] {
        assert_eq!(std::fs::symlink_metadata(p).unwrap().mtime(), 1, "{}", p.display());
    }
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&r1.join("shared")), ino(&r2.join("shared")));
    assert_ne!(ino(&r1.join("own")), ino(&r2.join("other")));
}

#[test]
fn verify_finds_and_repairs_damage() {
    let (dir, store) = setup();
    let src = dir.path().join("v");
    tree(&src, &[("f", "good")]);
    let path = store.add_path(&src, "v", Method::Nar, Algorithm::Sha256).unwrap().path;
    let other = store.add_text("t", b"text", &BTreeSet::new()).unwrap().path;
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());

    let real = store.real_path(&path);
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(real.join("f")).unwrap();
    std::fs::write(real.join("f"), "evil").unwrap();
    let problem = store.verify_path(&path, true).unwrap();
    assert!(matches!(problem, Some(PathProblem::HashMismatch { .. })), "{problem:?}");
    assert_eq!(store.verify_path(&path, false).unwrap(), None);

    castore::remove_tree(&store.real_path(&other)).unwrap();
    assert_eq!(store.verify_path(&other, false).unwrap(), Some(PathProblem::Missing));

    let report = store.verify_store(true, true).unwrap();
    assert_eq!(report.problems.len(), 2);
    assert_eq!(report.repaired, [path.clone(), other.clone()].into());
    assert!(report.is_ok());
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());
    assert_eq!(std::fs::read(store.real_path(&path).join("f")).unwrap(), b"good");
}

#[test]
fn delete_respects_referrers_and_frees_blobs() {
    let (dir, store) = setup();
    let dep_src = dir.path().join("dep");
    tree(&dep_src, &[("only-here", "unique contents of dep")]);
    let dep = store.add_path(&dep_src, "dep", Method::Nar, Algorithm::Sha256).unwrap().path;
    let top = store.add_text("top", store.print(&dep).as_bytes(), &[dep.clone()].into()).unwrap().path;
    let refused = store.delete_paths([&dep]);
    assert!(matches!(refused, Err(StoreError::Db(_))), "{refused:?}");
    assert!(store.is_valid(&dep).unwrap());

    let blob = castore::B3Digest::of(b"unique contents of dep");
    let pool_file = store.castore().blobs().pool_path(&blob, false);
    assert!(pool_file.exists());
    let deleted = store.delete_paths([&dep, &top]).unwrap();
    assert_eq!(deleted, [dep.clone(), top.clone()].into());
    assert!(!store.real_path(&dep).exists() && !store.real_path(&top).exists());
    assert!(!pool_file.exists(), "the unused blob is freed");
    assert!(store.query_all_valid_paths().unwrap().is_empty());
    // And the path can come back.
    assert_eq!(store.add_path(&dep_src, "dep", Method::Nar, Algorithm::Sha256).unwrap().path, dep);
}

#[test]
fn leftovers_of_an_unfinished_add_are_replaced() {
    let (dir, store) = setup();
    let src = dir.path().join("l");
    tree(&src, &[("f", "real")]);
    let nar = nar_of(&src);
    let info = info_for(&store, "l", &nar, BTreeSet::new());
    let real = store.real_path(&info.path);
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("junk"), "partial").unwrap();
    assert!(store.add_nar(info.clone(), &nar[..], false).unwrap());
    assert_eq!(nar_of(&real), nar);
}

#[test]
fn derivations_register_their_outputs() {
    let (dir, store) = setup();
    let sd = store.store_dir().clone();
    let drv_text = "Derive([(\"out\",\"\",\"\",\"\")],[],[],\"x86_64-linux\",\"/bin/sh\",[],[(\"out\",\"\")])";
    // Fill in the output path the way Nix does, then add the .drv as text.
    let mut drv = nix_formats::derivation::Derivation::parse_aterm(drv_text.as_bytes(), "d", &sd).unwrap();
    let mut reader = nix_formats::derivation::DirectoryReader::new(dir.path(), sd.clone());
    let mut cache = nix_formats::derivation::DrvHashCache::default();
    nix_formats::derivation::fill_output_paths(&mut drv, &sd, &mut cache, &mut reader).unwrap();
    let printed = drv.to_aterm(&sd).unwrap();
    let info = store.add_text("d.drv", &printed, &BTreeSet::new()).unwrap();
    let outputs = store.query_derivation_outputs(&info.path).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs["out"].name(), "d");
}

#[test]
fn build_outputs_are_canonicalised_and_registered_together() {
    let (dir, store) = setup();
    let sd = store.store_dir().clone();
    let dep = store.add_text("dep", b"d", &BTreeSet::new()).unwrap().path;
    let out = sd.make_output_path("out", &Hash::of(Algorithm::Sha256, b"drv"), "built").unwrap();
    let dev = sd.make_output_path("dev", &Hash::of(Algorithm::Sha256, b"drv"), "built").unwrap();
    // `out` built in place in the store directory, writable and with odd modes; `dev` elsewhere.
    let out_real = store.real_path(&out);
    tree(&out_real, &[("bin/run", "#!/bin/sh\n"), ("ref", &store.print(&dep))]);
    std::fs::set_permissions(out_real.join("bin/run"), std::fs::Permissions::from_mode(0o6775)).unwrap();
    let dev_src = dir.path().join("dev-build");
    tree(&dev_src, &[("include/h", &store.print(&out))]);
    let outputs = [
        store::local::BuiltOutput { path: out.clone(), source: out_real.clone(), references: [dep.clone()].into(), deriver: None, ca: None },
        store::local::BuiltOutput { path: dev.clone(), source: dev_src.clone(), references: [out.clone()].into(), deriver: None, ca: None },
    ];
    let infos = store.register_outputs(&outputs).unwrap();
    assert_eq!(infos.len(), 2);
    assert!(infos.iter().all(|i| i.ultimate));
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&out_real.join("bin/run")), 0o555);
    assert_eq!(mode(&out_real.join("bin")), 0o555);
    assert_eq!(std::fs::symlink_metadata(out_real.join("ref")).unwrap().mtime(), 1);
    assert_eq!(store.query_references(&dev).unwrap(), [out.clone()].into());
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());
    // Registering again leaves valid outputs alone.
    assert!(store.register_outputs(&outputs).unwrap().is_empty());
}

#[test]
fn unsigned_paths_are_refused_when_signatures_are_required() {
    let (dir, store) = setup();
    let src = dir.path().join("u");
    tree(&src, &[("f", "unsigned")]);
    let nar = nar_of(&src);
    let mut info = info_for(&store, "u", &nar, BTreeSet::new());
    info.ca = None;
    info.path = store.store_dir().make_output_path("out", &Hash::of(Algorithm::Sha256, b"u"), "u").unwrap();
    let key = nix_formats::signature::SecretKey::from_seed("test-1", &[7; 32]).unwrap();
    let mut keys = nix_formats::signature::TrustedKeys::new();
    keys.insert(key.public());
    let batch = |info: &ValidPathInfo| vec![NarToAdd { info: info.clone(), nar: &nar[..] }];
    let refused = store.add_nars_checked(batch(&info), false, Some(&keys));
    assert!(matches!(refused, Err(StoreError::Untrusted(_))), "{refused:?}");
    assert!(!store.is_valid(&info.path).unwrap());
    info.sign(store.store_dir(), &key).unwrap();
    assert_eq!(store.add_nars_checked(batch(&info), false, Some(&keys)).unwrap(), vec![info.path.clone()]);
}

#[test]
fn leftovers_are_removed_unless_locked_or_valid() {
    let (_dir, store) = setup();
    let valid = store.add_text("keep.tmp-1", b"a valid path with an odd name", &BTreeSet::new()).unwrap().path;
    let sd = store.store_dir().clone();
    let ghost = sd.make_text_path("ghost", &Hash::of(Algorithm::Sha256, b"g"), []).unwrap();
    let busy = sd.make_text_path("busy", &Hash::of(Algorithm::Sha256, b"b"), []).unwrap();
    let root = store.real_store_dir().to_path_buf();
    std::fs::write(root.join(ghost.to_string()), "renamed in, never registered").unwrap();
    std::fs::create_dir(root.join(format!("{ghost}.tmp-1-0"))).unwrap();
    std::fs::write(root.join(format!("{ghost}.lock")), "").unwrap();
    std::fs::write(root.join(format!("{busy}.tmp-2-0")), "being written").unwrap();
    std::fs::write(root.join("not-a-store-path"), "left alone").unwrap();
    let held = store::local::PathLock::acquire(&store.real_path(&busy)).unwrap();
    let removed = store.remove_leftovers().unwrap();
    assert_eq!(removed, [ghost.to_string(), format!("{ghost}.tmp-1-0"), format!("{ghost}.lock")].into());
    let mut left: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    // `.links` is Nix's (created empty for Nix's tools), not a leftover.
    let mut expected =
        vec![".links".to_owned(), valid.to_string(), format!("{busy}.tmp-2-0"), format!("{busy}.lock"), "not-a-store-path".to_owned()];
    expected.sort();
    assert_eq!(left, expected);
    drop(held);
    assert!(store.verify_store(true, false).unwrap().problems.is_empty());
}

#[test]
fn a_locked_sandbox_root_is_not_a_leftover() {
    let (_dir, store) = setup();
    // A derivation this process never added (so not a temporary root of ours).
    let drv = store.store_dir().make_text_path("t.drv", &Hash::of(Algorithm::Sha256, b"t"), []).unwrap();
    let root = store.real_store_dir().to_path_buf();
    let running = root.join(format!("{drv}.chroot"));
    std::fs::create_dir_all(running.join("root/etc")).unwrap();
    let lock = std::fs::File::open(&running).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    assert!(store.remove_leftovers().unwrap().is_empty());
    assert!(running.join("root/etc").is_dir());
    // Nor for the collector.
    let options = store::gc::collect::GcOptions::new(store::gc::collect::GcAction::DeleteDead);
    store.collect_garbage(&options).unwrap();
    assert!(running.join("root/etc").is_dir());
    drop(lock);
    store.collect_garbage(&options).unwrap();
    assert!(!running.exists());
    // A file named like one is not a sandbox (Nix's gc test makes such files).
    std::fs::write(&running, "").unwrap();
    store.collect_garbage(&options).unwrap();
    assert!(!running.exists());
}
