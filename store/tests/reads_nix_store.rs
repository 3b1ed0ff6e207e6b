//! A database that Nix created and filled (added files, instantiated and built derivations,
//! signatures) reads the same through our `Db` as through Nix's own queries; after our read-write
//! open (which adds the realisation tables), Nix keeps working on it.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;

use common::{dump_db, printed, NixStore};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::StorePath;
use store::db::{ClosureOptions, Db, OpenMode};

fn expression(fixed_hash: &str) -> String {
    format!(
        r#"
let
  sh = "/bin/sh";
  system = builtins.currentSystem;
  src = builtins.toFile "builder.sh" "echo hi > $out";
  dep = derivation {{ name = "dep"; inherit system; builder = sh; args = [ src ]; }};
  fixed = derivation {{
    name = "fixed"; inherit system; builder = sh; args = [ "-c" "echo fixed > $out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "{fixed_hash}";
  }};
  top = derivation {{
    name = "top"; inherit system; builder = sh; outputs = [ "out" "dev" ];
    args = [ "-c" "echo ${{dep}} ${{fixed}} > $out; echo self $dev $out > $dev" ];
  }};
in top
"#
    )
}

/// Fills the store with Nix; returns the top `.drv` path as Nix printed it.
fn populate(nix: &NixStore) -> String {
    let work = nix.root.path().join("work");
    std::fs::create_dir_all(work.join("dir/sub")).unwrap();
    std::fs::write(work.join("plain.txt"), "hello\n").unwrap();
    std::fs::write(work.join("flat.txt"), "flat file\n").unwrap();
    std::fs::write(work.join("dir/sub/x"), "x").unwrap();
    std::fs::write(work.join("gone.txt"), "deleted again").unwrap();
    let w = |name: &str| work.join(name).to_str().unwrap().to_owned();
    nix.run("nix-store", &["--add", &w("plain.txt"), &w("dir")]);
    nix.run("nix-store", &["--add-fixed", "sha256", &w("flat.txt")]);
    let gone = nix.run("nix-store", &["--add", &w("gone.txt")]);
    nix.run("nix-store", &["--delete", gone.trim()]);

    let fixed_hash = Hash::of(Algorithm::Sha256, b"fixed\n").to_base16();
    std::fs::write(work.join("e.nix"), expression(&fixed_hash)).unwrap();
    let drv = nix.run("nix-instantiate", &[&w("e.nix")]).trim().to_owned();
    nix.run("nix-store", &["--realise", &drv]);
    let (sk, pk) = (w("sk"), w("pk"));
    nix.run("nix-store", &["--generate-binary-cache-key", "test-key-1", &sk, &pk]);
    nix.run("nix", &["store", "sign", "--key-file", &sk, "--all"]);
    drv
}

/// Every query of ours agrees with Nix's answer, for every valid path.
fn check_against_nix(nix: &NixStore, db: &Db) {
    let sd = nix.store_dir();
    let infos = nix.nix_path_infos();
    assert!(infos.len() >= 10, "the store should have been filled: {}", infos.len());
    let all = db.query_all_valid_paths().unwrap();
    assert_eq!(all, infos.keys().cloned().collect::<BTreeSet<_>>());
    for (path, nix_info) in &infos {
        let p = sd.print(path);
        let ours = db.query_path_info(path).unwrap().unwrap();
        assert_eq!(&ours, nix_info, "{p}");
        assert_eq!(printed(&sd, &db.query_references(path).unwrap()), nix.query("--references", &p), "{p}");
        assert_eq!(printed(&sd, &db.query_referrers(path).unwrap()), nix.query("--referrers", &p), "{p}");
        let requisites = db.closure([path], ClosureOptions::default()).unwrap();
        assert_eq!(printed(&sd, &requisites), nix.query("--requisites", &p), "{p}");
        let flipped = ClosureOptions { flip_direction: true, ..Default::default() };
        assert_eq!(printed(&sd, &db.closure([path], flipped).unwrap()), nix.query("--referrers-closure", &p), "{p}");
        let deriver = ours.deriver.as_ref().map(|d| sd.print(d)).unwrap_or_else(|| "unknown-deriver".into());
        assert_eq!(nix.query("--deriver", &p), [deriver].into(), "{p}");
        assert_eq!(nix.query("--hash", &p), [ours.nar_hash.to_string()].into(), "{p}");
        assert_eq!(nix.query("--size", &p), [ours.nar_size.to_string()].into(), "{p}");
        assert_eq!(db.query_path_from_hash_part(path.hash_part()).unwrap().as_ref(), Some(path));
        if path.is_derivation() {
            let outputs: BTreeSet<StorePath> = db.query_derivation_outputs(path).unwrap().into_values().collect();
            assert_eq!(printed(&sd, &outputs), nix.query("--outputs", &p), "{p}");
            for out in &outputs {
                assert!(db.query_valid_derivers(out).unwrap().contains(path), "{p} derives {out}");
            }
            let with_outputs = ClosureOptions { include_outputs: true, ..Default::default() };
            let ours = printed(&sd, &db.closure([path], with_outputs).unwrap());
            let theirs: BTreeSet<String> =
                nix.run("nix-store", &["-qR", "--include-outputs", &p]).lines().map(str::to_owned).collect();
            assert_eq!(ours, theirs, "{p}");
        }
    }
    let theirs = nix.run("nix-store", &["--dump-db"]);
    assert_eq!(dump_db(db, &all), theirs);
}

#[test]
fn nix_created_database_reads_the_same() {
    let nix = NixStore::new("");
    let top_drv = populate(&nix);
    let schema_before = nix.schema_rows();

    // Read-only first: the database stays exactly as Nix left it.
    let ro = nix.open_db(OpenMode::ReadOnly);
    check_against_nix(&nix, &ro);
    let top = nix.store_dir().parse(&top_drv).unwrap();
    assert_eq!(ro.query_derivation_outputs(&top).unwrap().keys().collect::<Vec<_>>(), ["dev", "out"]);
    drop(ro);
    assert_eq!(nix.schema_rows(), schema_before);
    assert!(!nix.state_dir().join("db/ca-schema").exists());

    // Read-write: adds the realisation tables, as Nix 2.26 with ca-derivations would.
    let db = nix.open_db(OpenMode::ReadWrite);
    check_against_nix(&nix, &db);
    let after = nix.schema_rows();
    assert!(after.len() > schema_before.len());
    for row in &schema_before {
        assert!(after.contains(row), "{row:?} must be unchanged");
    }

    // Nix still accepts the database, with or without ca-derivations, while we hold it open.
    nix.run("nix-store", &["--verify", "--check-contents"]);
    nix.set_features("ca-derivations");
    let with_ca = nix.schema_rows();
    nix.run("nix-store", &["--verify", "--check-contents"]);
    assert_eq!(nix.schema_rows(), with_ca, "Nix 2.8 with ca-derivations must not migrate our tables");
    nix.set_features("");

    // Nix writes, we read; Nix deletes, we see it gone.
    let extra = nix.root.path().join("work/extra.txt");
    std::fs::write(&extra, "written by Nix while casnix has the database open").unwrap();
    let added = nix.run("nix-store", &["--add", extra.to_str().unwrap()]);
    let added = nix.store_dir().parse(added.trim()).unwrap();
    assert!(db.is_valid(&added).unwrap());
    nix.run("nix-store", &["--delete", &nix.store_dir().print(&added)]);
    assert!(!db.is_valid(&added).unwrap());
    check_against_nix(&nix, &db);
}
