//! Substitution from real `file://` caches written here as `nix copy --to file://` writes them.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use castore::Durability;
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::narinfo::NarInfo;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::{SecretKey, TrustedKeys};
use nix_formats::store_path::{StoreDir, StorePath};

use super::*;
use crate::StoreConfig;

fn open(root: &Path, store_dir: &str) -> Store {
    let mut config = StoreConfig::new(store_dir, root.join("state"));
    config.real_store_dir = Some(root.join("store"));
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

/// An input-addressed path holding `contents`, referring to `refs`, added to `store`.
fn input_addressed(store: &Store, scratch: &Path, name: &str, contents: &str, refs: &[&StorePath]) -> StorePath {
    let file = scratch.join(name);
    let mut text = contents.to_owned();
    for r in refs {
        text.push_str(&store.print(r));
    }
    std::fs::write(&file, text).unwrap();
    let mut nar = Vec::new();
    nix_formats::nar::dump_path(&file, &mut nar).unwrap();
    let path = store.store_dir().make_store_path("output:out", &Hash::of(Algorithm::Sha256, name.as_bytes()), name).unwrap();
    let mut info = ValidPathInfo::new(path.clone(), Hash::of(Algorithm::Sha256, &nar));
    info.nar_size = nar.len() as u64;
    info.references = refs.iter().map(|r| (*r).clone()).collect();
    store.add_nar(info, &nar[..], false).unwrap();
    path
}

fn compress(method: &str, data: &[u8]) -> Vec<u8> {
    match method {
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::stream::encode_all(data, 3).unwrap(),
        _ => data.to_vec(),
    }
}

/// Writes `paths` of `store` into a binary cache at `dir`, signed with `key` if given.
fn write_cache(store: &Store, paths: &[&StorePath], dir: &Path, method: &str, key: Option<&SecretKey>) {
    std::fs::create_dir_all(dir.join("nar")).unwrap();
    std::fs::write(dir.join("nix-cache-info"), format!("StoreDir: {}\nWantMassQuery: 1\nPriority: 40\n", store.store_dir().as_str())).unwrap();
    for path in paths {
        let mut info = store.query_path_info(path).unwrap().unwrap();
        info.sigs.clear();
        info.registration_time = 0;
        info.ultimate = false;
        if let Some(key) = key {
            info.sign(store.store_dir(), key).unwrap();
        }
        let nar = store.nar_from_path(path, Vec::new()).unwrap();
        let file = compress(method, &nar);
        let file_hash = Hash::of(Algorithm::Sha256, &file);
        let url = format!("nar/{}.nar{}", file_hash.to_nix32(), if method == "none" { String::new() } else { format!(".{method}") });
        std::fs::write(dir.join(&url), &file).unwrap();
        let mut narinfo = NarInfo::new(info, url, method);
        narinfo.file_hash = Some(file_hash);
        narinfo.file_size = Some(file.len() as u64);
        std::fs::write(dir.join(narinfo.file_name()), narinfo.to_text(store.store_dir()).unwrap()).unwrap();
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    top: StorePath,
    dep: StorePath,
    key: SecretKey,
}

/// A source store with `top` → `dep`, published in caches of every compression.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let source = open(&root.join("source"), "/nix/store");
    std::fs::create_dir_all(root.join("scratch")).unwrap();
    let dep = input_addressed(&source, &root.join("scratch"), "dep", "the dependency", &[]);
    let top = input_addressed(&source, &root.join("scratch"), "top", "refers to ", &[&dep]);
    let key = SecretKey::generate("cache-1").unwrap();
    for method in ["none", "xz", "bzip2", "zstd"] {
        write_cache(&source, &[&top, &dep], &root.join(format!("cache-{method}")), method, Some(&key));
    }
    write_cache(&source, &[&top, &dep], &root.join("unsigned"), "xz", None);
    Fixture { _dir: dir, root, top, dep, key }
}

fn substituters(urls: &[String], keys: &[&SecretKey], require_sigs: bool) -> Substituters {
    let keys: TrustedKeys = keys.iter().map(|k| k.public()).collect();
    Substituters::open(urls, &StoreDir::new("/nix/store"), keys, require_sigs, &mut |w| panic!("{w}"))
}

#[test]
fn a_closure_is_substituted_from_each_compression() {
    let f = fixture();
    for method in ["none", "xz", "bzip2", "zstd"] {
        let target = open(&f.root.join(format!("target-{method}")), "/nix/store");
        let subs = substituters(&[format!("file://{}", f.root.join(format!("cache-{method}")).display())], &[&f.key], true);
        let info = target.query_substitutable(&subs, &f.top, None).unwrap().unwrap();
        assert_eq!(info.references, BTreeSet::from([f.dep.clone()]));
        assert!(info.download_size > 0 && info.nar_size > 0);
        let mut copied = Vec::new();
        assert!(target
            .substitute(&subs, &f.top, None, &mut |e| if let SubstituteEvent::Copying { path, .. } = e { copied.push(path.clone()) })
            .unwrap());
        assert_eq!(copied, vec![f.dep.clone(), f.top.clone()], "references first");
        assert_eq!(target.query_references(&f.top).unwrap(), BTreeSet::from([f.dep.clone()]));
        let problems = target.verify_path(&f.top, true).unwrap();
        assert!(problems.is_none(), "{method}: {problems:?}");
        assert!(!target.query_path_info(&f.top).unwrap().unwrap().sigs.is_empty());
    }
}

#[test]
fn unsigned_paths_need_a_trusted_cache_or_no_require_sigs() {
    let f = fixture();
    let url = format!("file://{}", f.root.join("unsigned").display());
    let target = open(&f.root.join("t1"), "/nix/store");
    let keys: TrustedKeys = [f.key.public()].into_iter().collect();
    let subs = Substituters::open(std::slice::from_ref(&url), &StoreDir::new("/nix/store"), keys, true, &mut |w| panic!("{w}"));
    let mut warnings = Vec::new();
    let found = target
        .substitute(&subs, &f.top, None, &mut |e| if let SubstituteEvent::Warning(w) = e { warnings.push(w) })
        .unwrap();
    assert!(!found);
    assert!(warnings[0].contains("not signed by any of the keys in 'trusted-public-keys'"), "{warnings:?}");
    assert!(!target.is_valid(&f.top).unwrap());

    let trusted = substituters(&[format!("{url}?trusted=1")], &[], true);
    assert!(target.substitute(&trusted, &f.top, None, &mut |_| {}).unwrap());
    let lax = substituters(&[url], &[], false);
    let other = open(&f.root.join("t2"), "/nix/store");
    assert!(other.substitute(&lax, &f.top, None, &mut |_| {}).unwrap());
}

#[test]
fn missing_paths_and_unreadable_urls_are_not_found() {
    let f = fixture();
    let target = open(&f.root.join("t"), "/nix/store");
    let subs = substituters(&["https://cache.nixos.org".into(), format!("file://{}", f.root.join("empty").display())], &[], true);
    assert!(!target.substitute(&subs, &f.top, None, &mut |_| {}).unwrap());
    assert_eq!(target.query_substitutable(&subs, &f.top, None).unwrap(), None);
}

#[test]
fn a_corrupt_nar_is_refused() {
    let f = fixture();
    let cache = f.root.join("cache-none");
    for entry in std::fs::read_dir(cache.join("nar")).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 20;
        data[last] ^= 1;
        std::fs::write(&path, data).unwrap();
    }
    let target = open(&f.root.join("t"), "/nix/store");
    let subs = substituters(&[format!("file://{}", cache.display())], &[&f.key], true);
    let err = target.substitute(&subs, &f.dep, None, &mut |_| {}).unwrap_err();
    assert!(matches!(err, SubstituteError::Store(_)), "{err}");
    assert!(!target.is_valid(&f.dep).unwrap());
}

#[test]
fn a_content_addressed_path_comes_from_another_store_dir() {
    let dir = tempfile::tempdir().unwrap();
    let other = open(&dir.path().join("fnord"), "/fnord/store");
    let info = other.add_to_store("fetchurl.sh", Method::Flat, Algorithm::Sha256, &BTreeSet::new(), &b"echo hi\n"[..]).unwrap();
    let cache = dir.path().join("cache");
    write_cache(&other, &[&info.path], &cache, "xz", None);
    let ca: ContentAddress = info.ca.clone().unwrap();

    let target = open(&dir.path().join("target"), "/nix/store");
    let ours = ca.store_path(target.store_dir(), "fetchurl.sh", [], false).unwrap();
    let url = format!("file://{}?store=/fnord/store", cache.display());
    let subs = Substituters::open(&[url], &StoreDir::new("/nix/store"), TrustedKeys::new(), true, &mut |w| panic!("{w}"));
    // Without the address the path cannot be found there.
    assert!(!target.substitute(&subs, &ours, None, &mut |_| {}).unwrap());
    assert!(target.substitute(&subs, &ours, Some(&ca), &mut |_| {}).unwrap());
    let mut contents = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::open(target.real_path(&ours)).unwrap(), &mut contents).unwrap();
    assert_eq!(contents, b"echo hi\n");
    assert_eq!(target.query_path_info(&ours).unwrap().unwrap().ca, Some(ca));
}

#[test]
fn a_local_store_is_a_substituter() {
    let f = fixture();
    let source = f.root.join("source");
    let url = format!("local?store=/nix/store&state={}&real={}", source.join("state").display(), source.join("store").display());
    let target = open(&f.root.join("t"), "/nix/store");
    let subs = substituters(&[url], &[], false);
    assert_eq!(subs.caches().len(), 1);
    let info = target.query_substitutable(&subs, &f.top, None).unwrap().unwrap();
    assert_eq!(info.download_size, 0);
    assert!(target.substitute(&subs, &f.top, None, &mut |_| {}).unwrap());
    assert!(target.verify_path(&f.dep, true).unwrap().is_none());
    assert!(target.verify_path(&f.top, true).unwrap().is_none());
    // A store whose database does not exist is reported, not used.
    let mut warnings = Vec::new();
    let missing = format!("local?state={}", f.root.join("nowhere").display());
    let none = Substituters::open(&[missing], &StoreDir::new("/nix/store"), TrustedKeys::new(), false, &mut |w| warnings.push(w));
    assert!(none.is_empty());
    assert_eq!(warnings.len(), 1);
}
