//! `casnix store ... --store local` on casnix's own local store, checked against the real Nix 2.8
//! working on the same isolated root (`NIX_REMOTE=local`).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{casnix, make_tree, run, run_ok, NixStore};

/// `casnix store <args> --store local` on the store at `store_dir`.
fn ours(nix: &NixStore, store_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = casnix();
    c.arg("store").args(args).arg("--store").arg("local");
    c.env("NIX_STORE_DIR", store_dir).env("NIX_STATE_DIR", nix.dir.path().join("state")).env_remove("NIX_REMOTE");
    c
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap().trim().to_owned()
}

#[test]
fn local_store_commands_agree_with_nix() {
    let nix = NixStore::new();
    let store_dir = nix.dir.path().join("store");
    let tree = make_tree(nix.dir.path(), 3);
    let flat = nix.dir.path().join("flat.txt");
    std::fs::write(&flat, "flat\n").unwrap();

    let added = text(run_ok(&mut ours(&nix, &store_dir, &["add", tree.to_str().unwrap()])));
    let added_flat = text(run_ok(&mut ours(&nix, &store_dir, &["add", "--mode", "flat", flat.to_str().unwrap()])));
    // Nix computes the same paths and finds them valid.
    let theirs = text(run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--add", tree.to_str().unwrap()])));
    assert_eq!(added, theirs);
    let theirs_flat =
        text(run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--add-fixed", "sha256", flat.to_str().unwrap()])));
    assert_eq!(added_flat, theirs_flat);
    run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--verify", "--check-contents"]));

    // dump, cat and path-info.
    let dumped = run_ok(&mut ours(&nix, &store_dir, &["dump", &added]));
    assert_eq!(dumped, run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--dump", &added])));
    assert_eq!(run_ok(&mut ours(&nix, &store_dir, &["cat", &added_flat])), b"flat\n");
    let listed = text(run_ok(&mut ours(&nix, &store_dir, &["path-info", "--all"])));
    assert_eq!(listed.lines().count(), 2);
    let sized = text(run_ok(&mut ours(&nix, &store_dir, &["path-info", "-s", &added])));
    let size = text(run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["-q", "--size", &added])));
    assert_eq!(sized, format!("{added}\t{size:>11}"));
    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(&mut ours(&nix, &store_dir, &["path-info", "--json", &added, &added_flat]))).unwrap();
    let hash = text(run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).args(["-q", "--hash", &added])));
    let hash = nix_formats::hash::Hash::parse_prefixed(&hash).unwrap();
    assert_eq!(json[&added]["narHash"], hash.to_sri());
    assert_eq!(json[&added_flat]["ca"], serde_json::Value::String(format!("fixed:sha256:{}", {
        let h = nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, b"flat\n");
        h.to_nix32()
    })));

    // verify, then delete.
    run_ok(&mut ours(&nix, &store_dir, &["verify", "--check-contents"]));
    let deleted = run(&mut ours(&nix, &store_dir, &["delete", &added]));
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    assert!(String::from_utf8_lossy(&deleted.stdout).contains("1 store paths deleted"));
    let valid = run(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--check-validity", &added]));
    assert!(!valid.status.success(), "Nix sees the deleted path as invalid");
    // gc: nothing is rooted, so what Nix calls dead is what ours deletes.
    let nix_dead = run(nix.cmd_with_store_dir("nix-store", &store_dir).args(["--gc", "--print-dead"]));
    assert!(nix_dead.status.success());
    let our_dead = run(&mut ours(&nix, &store_dir, &["gc", "--print-dead"]));
    assert!(our_dead.status.success(), "{}", String::from_utf8_lossy(&our_dead.stderr));
    let lines = |o: &std::process::Output| -> BTreeSet<String> {
        String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with('/')).map(str::to_owned).collect()
    };
    assert_eq!(lines(&our_dead), lines(&nix_dead));
    assert!(!lines(&our_dead).is_empty());
    let gc = run(&mut ours(&nix, &store_dir, &["gc"]));
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(String::from_utf8_lossy(&gc.stdout).contains(&format!("{} store paths deleted", lines(&our_dead).len())));
}
