//! Content addresses with a self-reference, checked as Nix 2.26.3 checks them: the address's
//! hash is taken modulo the path's own hash part (replaced by NULs), the path's type ends in
//! `:self`; what Nix refuses is refused with Nix's words. Nix 2.8 agrees that such a path is
//! content-addressed (`nix store verify --sigs-needed 1` accepts it unsigned).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;

use castore::Durability;
use common::NixStore;
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::{SecretKey, TrustedKeys};
use nix_formats::store_path::StorePath;
use store::local::NarToAdd;
use store::{Store, StoreConfig};

const ZEROS: [u8; 32] = [0; 32];

fn open(nix: &NixStore) -> Store {
    let mut config = StoreConfig::new(nix.store_path_dir().to_str().unwrap(), nix.state_dir());
    config.durability = Durability::Unsynced;
    Store::open(&config).unwrap()
}

/// Replaces the NUL placeholder after `<store>/` in `bytes` by `hash_part`.
fn fill_placeholder(bytes: &[u8], store_prefix: &str, hash_part: &str) -> Vec<u8> {
    let mut needle = store_prefix.as_bytes().to_vec();
    needle.extend_from_slice(&ZEROS);
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice()).unwrap() + store_prefix.len();
    let mut out = bytes.to_vec();
    out[at..at + 32].copy_from_slice(hash_part.as_bytes());
    out
}

/// Contents that name their own path, with the hash part left as NULs.
fn contents_with_placeholder(store: &Store, name: &str) -> (Vec<u8>, String) {
    let prefix = format!("{}/", store.store_dir().as_str());
    let mut contents = format!("#!/bin/sh\nexec {prefix}").into_bytes();
    contents.extend_from_slice(&ZEROS);
    contents.extend_from_slice(format!("-{name}/bin/real \"$@\"\n").as_bytes());
    (contents, prefix)
}

/// A self-referencing `fixed:r:sha256` object: (info, NAR).
fn self_referencing_nar(store: &Store, nix: &NixStore, name: &str) -> (ValidPathInfo, Vec<u8>) {
    let (contents, prefix) = contents_with_placeholder(store, name);
    let file = nix.root.path().join(format!("{name}-src"));
    std::fs::write(&file, &contents).unwrap();
    let mut zeroed = Vec::new();
    nix_formats::nar::dump_path(&file, &mut zeroed).unwrap();
    let ca_hash = Hash::of(Algorithm::Sha256, &zeroed);
    let path = store.store_dir().make_fixed_output_path(name, true, &ca_hash, [], true).unwrap();
    let nar = fill_placeholder(&zeroed, &prefix, path.hash_part());
    let mut info = ValidPathInfo::new(path.clone(), Hash::of(Algorithm::Sha256, &nar));
    info.nar_size = nar.len() as u64;
    info.references = [path].into();
    info.ca = Some(ContentAddress { method: Method::Nar, hash: ca_hash });
    (info, nar)
}

fn require_sigs() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.insert(SecretKey::from_seed("test-1", &[9; 32]).unwrap().public());
    keys
}

/// Adds as for an untrusted client with `require-sigs`.
fn add(store: &Store, info: &ValidPathInfo, nar: &[u8]) -> Result<Vec<StorePath>, String> {
    store.add_nars_checked(vec![NarToAdd { info: info.clone(), nar }], false, Some(&require_sigs())).map_err(|e| e.to_string())
}

/// Adds as for a trusted client (Nix's `checkSigs = false`): the contents are checked.
fn add_trusted(store: &Store, info: &ValidPathInfo, nar: &[u8]) -> Result<bool, String> {
    store.add_nar(info.clone(), nar, false).map_err(|e| e.to_string())
}

#[test]
fn a_self_referencing_nar_address_is_accepted_unsigned() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let (info, nar) = self_referencing_nar(&store, &nix, "selfref");
    assert!(info.is_content_addressed(store.store_dir()));
    assert_eq!(add(&store, &info, &nar).unwrap(), vec![info.path.clone()]);
    let printed = store.print(&info.path);
    let on_disk = std::fs::read_to_string(store.real_path(&info.path)).unwrap();
    assert!(on_disk.contains(&format!("exec {printed}/bin/real")), "{on_disk}");
    assert_eq!(store.query_references(&info.path).unwrap(), [info.path.clone()].into());
    let stored = store.query_path_info(&info.path).unwrap().unwrap();
    assert_eq!(stored.ca, info.ca);
    drop(store);
    // Nix 2.8 computes the same path for the address (`:self`) and so needs no signature.
    nix.run("nix", &["store", "verify", "--sigs-needed", "1", &printed]);
    assert_eq!(nix.query("--references", &printed), [printed.clone()].into());
}

#[test]
fn what_nix_refuses_is_refused_with_its_words() {
    let nix = NixStore::new("");
    let store = open(&nix);
    let (info, nar) = self_referencing_nar(&store, &nix, "selfref");
    let printed = store.print(&info.path);

    // Untrusted, a path that is not content-addressed needs a signature (Nix checks this first).
    let mut plain = info.clone();
    plain.ca = Some(ContentAddress { method: Method::Nar, hash: info.nar_hash.clone() });
    let err = add(&store, &plain, &nar).unwrap_err();
    assert_eq!(err.to_string(), format!("cannot add path '{printed}' because it lacks a signature by a trusted key"));

    // The plain NAR hash is not the address's hash (that one is taken modulo the hash part).
    let mut plain = info.clone();
    plain.ca = Some(ContentAddress { method: Method::Nar, hash: info.nar_hash.clone() });
    let err = add_trusted(&store, &plain, &nar).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("ca hash mismatch importing path '{printed}';\n  specified: sha256:")),
        "{err}"
    );

    // Without the self-reference the address gives another path.
    let mut no_self = info.clone();
    no_self.references.clear();
    let err = add_trusted(&store, &no_self, &nar).unwrap_err();
    assert_eq!(err.to_string(), format!("cannot add path '{printed}' to the Nix store because it claims to be content-addressed but isn't"));

    // A text address never has a self-reference.
    let (contents, prefix) = contents_with_placeholder(&store, "text-self");
    let text_hash = Hash::of(Algorithm::Sha256, &contents);
    let text_path = store.store_dir().make_text_path("text-self", &text_hash, []).unwrap();
    let filled = fill_placeholder(&contents, &prefix, text_path.hash_part());
    let src = nix.root.path().join("text-self-src");
    std::fs::write(&src, &filled).unwrap();
    let mut text_nar = Vec::new();
    nix_formats::nar::dump_path(&src, &mut text_nar).unwrap();
    let mut text = ValidPathInfo::new(text_path.clone(), Hash::of(Algorithm::Sha256, &text_nar));
    text.nar_size = text_nar.len() as u64;
    text.references = [text_path.clone()].into();
    text.ca = Some(ContentAddress { method: Method::Text, hash: text_hash });
    let err = add_trusted(&store, &text, &text_nar).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot add path '{}' to the Nix store because it claims to be content-addressed but isn't", store.print(&text_path))
    );

    // A flat address allows no references at all.
    let other = store.add_text("other", b"other", &BTreeSet::new()).unwrap().path;
    let flat_src = nix.root.path().join("flat");
    std::fs::write(&flat_src, "flat").unwrap();
    let mut flat_nar = Vec::new();
    nix_formats::nar::dump_path(&flat_src, &mut flat_nar).unwrap();
    let flat_hash = Hash::of(Algorithm::Sha256, b"flat");
    let flat_path = store.store_dir().make_fixed_output_path("flat", false, &flat_hash, [], false).unwrap();
    let mut flat = ValidPathInfo::new(flat_path, Hash::of(Algorithm::Sha256, &flat_nar));
    flat.nar_size = flat_nar.len() as u64;
    flat.references = [other].into();
    flat.ca = Some(ContentAddress { method: Method::Flat, hash: flat_hash });
    let err = add_trusted(&store, &flat, &flat_nar).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fixed output derivation 'flat' is not allowed to refer to other store paths.\nYou may need to use the 'unsafeDiscardReferences' derivation attribute, see the manual for more details."
    );

    for refused in [&info.path, &text_path] {
        assert!(!store.is_valid(refused).unwrap());
    }
}
