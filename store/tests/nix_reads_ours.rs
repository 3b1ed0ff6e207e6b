//! A database that our `Db` created and filled (contents placed in the store directory by us,
//! NAR-hashed with nix-formats) is accepted by Nix: `nix-store --verify --check-contents`, every
//! query, `nix path-info --json`, `nix-store --dump-db` and `nix store verify` of signatures agree;
//! Nix can then write to it and we see its writes, without any schema migration.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{dump_db, printed, NixStore};
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::derivation::{Derivation, DerivationOutput};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::nar::{self, Limits, Writer};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::SecretKey;
use nix_formats::store_path::{StoreDir, StorePath};
use store::db::{CastoreRoot, ClosureOptions, Db, OpenMode};

/// Places a tree in the store by restoring a NAR we write (as an import does).
fn restore_tree(store: &Path, path: &StorePath, mention: &str) {
    let mut w = Writer::new(Vec::new());
    w.start_directory().unwrap();
    w.entry(b"bin").unwrap();
    w.start_directory().unwrap();
    w.entry(b"run").unwrap();
    w.regular_bytes(true, format!("#!/bin/sh\nexec {mention}\n").as_bytes()).unwrap();
    w.end_directory().unwrap();
    w.entry(b"link").unwrap();
    w.symlink(b"bin/run").unwrap();
    w.entry(b"readme").unwrap();
    w.regular_bytes(false, b"a tree\n").unwrap();
    w.end_directory().unwrap();
    let archive = w.finish().unwrap();
    nar::restore(&archive[..], &store.join(path.to_string()), &Limits::default()).unwrap();
}

/// The info of a path whose contents are already in place, with its NAR hash and size.
fn info_for(store: &Path, path: &StorePath, refs: &[&StorePath]) -> ValidPathInfo {
    let (nar_hash, nar_size) = nar::hash_path(&store.join(path.to_string()), Algorithm::Sha256).unwrap();
    let mut info = ValidPathInfo::new(path.clone(), nar_hash);
    info.nar_size = nar_size;
    info.references = refs.iter().map(|r| (*r).clone()).collect();
    info
}

fn input_addressed(sd: &StoreDir, name: &str) -> StorePath {
    sd.make_store_path("output:out", &Hash::of(Algorithm::Sha256, name.as_bytes()), name).unwrap()
}

struct Registered {
    infos: Vec<ValidPathInfo>,
    drv_path: StorePath,
    tree: StorePath,
    key: SecretKey,
}

/// Writes contents into the store and registers them (castore roots first, then one
/// registration of everything, given in no particular order).
fn fill(nix: &NixStore, db: &Db) -> Registered {
    let sd = nix.store_dir();
    let store = nix.store_path_dir();
    let key = SecretKey::from_seed("casnix-test-1", &[7; 32]).unwrap();

    let leaf = input_addressed(&sd, "leaf");
    std::fs::write(store.join(leaf.to_string()), "leaf contents\n").unwrap();

    let tree = input_addressed(&sd, "tree");
    restore_tree(&store, &tree, &sd.print(&leaf));

    let selfref = input_addressed(&sd, "selfref");
    std::fs::write(store.join(selfref.to_string()), format!("I am {}\n", sd.print(&selfref))).unwrap();

    let text_contents = format!("text that mentions {}\n", sd.print(&leaf));
    let text_ca = ContentAddress { method: Method::Text, hash: Hash::of(Algorithm::Sha256, text_contents.as_bytes()) };
    let text = text_ca.store_path(&sd, "note.txt", [&leaf], false).unwrap();
    std::fs::write(store.join(text.to_string()), &text_contents).unwrap();

    let out = input_addressed(&sd, "built");
    let mut drv = Derivation {
        name: "built".into(),
        system: b"x86_64-linux".to_vec(),
        builder: b"/bin/sh".to_vec(),
        args: vec![b"-c".to_vec(), b"echo built > $out".to_vec()],
        ..Default::default()
    };
    drv.input_srcs.insert(leaf.clone());
    drv.outputs.insert("out".into(), DerivationOutput::InputAddressed(out.clone()));
    drv.env.insert(b"out".to_vec(), sd.print(&out).into_bytes());
    let aterm = drv.to_aterm(&sd).unwrap();
    let drv_path = drv.drv_path(&sd).unwrap();
    std::fs::write(store.join(drv_path.to_string()), &aterm).unwrap();
    std::fs::write(store.join(out.to_string()), "built\n").unwrap();

    let mut infos = vec![
        info_for(&store, &tree, &[&leaf]),
        info_for(&store, &selfref, &[&selfref]),
        info_for(&store, &text, &[&leaf]),
        info_for(&store, &drv_path, &[&leaf]),
        info_for(&store, &out, &[]),
        info_for(&store, &leaf, &[]),
    ];
    for info in &mut infos {
        if info.path == text {
            info.ca = Some(text_ca.clone());
        } else if info.path == drv_path {
            info.ca = Some(ContentAddress { method: Method::Text, hash: Hash::of(Algorithm::Sha256, &aterm) });
        } else if info.path == out {
            info.deriver = Some(drv_path.clone());
            info.ultimate = true;
        } else {
            info.sign(&sd, &key).unwrap();
        }
    }
    let roots: Vec<CastoreRoot> = infos
        .iter()
        .map(|i| CastoreRoot { path: i.path.clone(), nar_hash: i.nar_hash.clone(), root: i.path.to_string().into_bytes() })
        .collect();
    db.set_castore_roots(&roots).unwrap();
    let derivations: BTreeMap<StorePath, Derivation> = [(drv_path.clone(), drv)].into();
    db.register_valid_paths(&infos, &derivations).unwrap();
    Registered { infos, drv_path, tree, key }
}

fn check_nix_agrees(nix: &NixStore, db: &Db, expected: &[ValidPathInfo]) {
    let sd = nix.store_dir();
    let verify = nix.output("nix-store", &["--verify", "--check-contents"]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(!stderr.contains("error") && !stderr.contains("modified"), "{stderr}");

    let nix_infos = nix.nix_path_infos();
    let ours: BTreeMap<StorePath, ValidPathInfo> = db
        .query_all_valid_paths()
        .unwrap()
        .into_iter()
        .map(|p| (p.clone(), db.query_path_info(&p).unwrap().unwrap()))
        .collect();
    assert_eq!(nix_infos, ours);
    for info in expected {
        let mut stored = ours[&info.path].clone();
        assert_ne!(stored.registration_time, 0);
        stored.registration_time = info.registration_time;
        assert_eq!(&stored, info);
    }
    for path in ours.keys() {
        let p = sd.print(path);
        assert_eq!(printed(&sd, &db.query_references(path).unwrap()), nix.query("--references", &p), "{p}");
        assert_eq!(printed(&sd, &db.query_referrers(path).unwrap()), nix.query("--referrers", &p), "{p}");
        let requisites = db.closure([path], ClosureOptions::default()).unwrap();
        assert_eq!(printed(&sd, &requisites), nix.query("--requisites", &p), "{p}");
        let info = &ours[path];
        let deriver = info.deriver.as_ref().map(|d| sd.print(d)).unwrap_or_else(|| "unknown-deriver".into());
        assert_eq!(nix.query("--deriver", &p), [deriver].into(), "{p}");
        assert_eq!(nix.query("--hash", &p), [info.nar_hash.to_string()].into(), "{p}");
        assert_eq!(nix.query("--size", &p), [info.nar_size.to_string()].into(), "{p}");
    }
    let all: BTreeSet<StorePath> = ours.keys().cloned().collect();
    assert_eq!(dump_db(db, &all), nix.run("nix-store", &["--dump-db"]));
}

#[test]
fn nix_accepts_a_database_we_created() {
    let nix = NixStore::new("");
    let db = nix.open_db(OpenMode::ReadWrite);
    let sd = nix.store_dir();
    let reg = fill(&nix, &db);
    let schema = nix.schema_rows();

    check_nix_agrees(&nix, &db, &reg.infos);
    let outputs = db.query_derivation_outputs(&reg.drv_path).unwrap();
    let out_paths: BTreeSet<StorePath> = outputs.values().cloned().collect();
    assert_eq!(printed(&sd, &out_paths), nix.query("--outputs", &sd.print(&reg.drv_path)));

    // Signatures we made verify with Nix; unsigned, non-ultimate paths would not.
    let pk = reg.key.public().to_string();
    nix.run("nix", &["store", "verify", "--all", "--option", "trusted-public-keys", &pk]);
    let stranger = SecretKey::from_seed("stranger-1", &[9; 32]).unwrap().public().to_string();
    let untrusted = nix
        .cmd("nix")
        .args(["store", "verify", "--all", "--option", "trusted-public-keys", &stranger])
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "without our key the signed paths must be untrusted");

    // Nix 2.8 opened it without migrating anything, also with ca-derivations enabled.
    assert_eq!(nix.schema_rows(), schema);
    nix.set_features("ca-derivations");
    nix.run("nix-store", &["--verify", "--check-contents"]);
    assert_eq!(nix.schema_rows(), schema);
    nix.set_features("");

    // Every root is backed until Nix deletes a path; then ours is ignored and reconciled away.
    for info in &reg.infos {
        assert_eq!(db.castore_root(&info.path).unwrap(), Some(info.path.to_string().into_bytes()));
    }
    nix.run("nix-store", &["--delete", &sd.print(&reg.tree)]);
    assert!(!db.is_valid(&reg.tree).unwrap());
    assert_eq!(db.castore_root(&reg.tree).unwrap(), None);
    assert_eq!(db.reconcile_castore_roots().unwrap(), 1);

    // Nix adds a path; we see it, and all queries still agree.
    let extra = nix.root.path().join("extra.txt");
    std::fs::write(&extra, "from Nix").unwrap();
    let added = nix.run("nix-store", &["--add", extra.to_str().unwrap()]);
    assert!(db.is_valid(&sd.parse(added.trim()).unwrap()).unwrap());
    let remaining: Vec<ValidPathInfo> = reg.infos.iter().filter(|i| i.path != reg.tree).cloned().collect();
    check_nix_agrees(&nix, &db, &remaining);

    // We invalidate, Nix sees the path gone.
    let selfref = remaining.iter().find(|i| i.path.name() == "selfref").unwrap().path.clone();
    db.invalidate_paths([&selfref]).unwrap();
    let valid = nix.run("nix-store", &["--check-validity", "--print-invalid", &sd.print(&selfref)]);
    assert_eq!(valid.trim(), sd.print(&selfref));
}
