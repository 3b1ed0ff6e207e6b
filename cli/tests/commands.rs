//! The other `casnix` commands against the real Nix: `derivation show` against output recorded
//! from Nix 2.26.3, `nar ls`, `hash convert`, keys and narinfo signing against Nix 2.8, and clean
//! failures (one line on stderr, non-zero exit, no panic) on bad input.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{casnix, make_tree, run, run_ok, NixStore};

/// Output of the real Nix 2.26.3, recorded by `nix-formats/tests/data/nix-2.26.3-show/record.sh`.
fn recorded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nix-formats/tests/data/nix-2.26.3-show")
}

#[test]
fn derivation_show_equals_nix_2_26() {
    let expected = fs::read(recorded().join("show-all.json")).expect("read show-all.json");
    let v: serde_json::Value = serde_json::from_slice(&expected).expect("json");
    let obj = v.as_object().expect("object");
    assert!(obj.len() >= 20, "the recording should hold the top-level derivations");
    let files: Vec<PathBuf> = obj
        .keys()
        .map(|k| recorded().join("store").join(k.trim_start_matches("/nix/store/")))
        .collect();
    let out = run_ok(casnix().env_remove("NIX_STORE_DIR").args(["derivation", "show"]).args(&files));
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&expected));
}

#[test]
fn derivation_show_recursive_equals_nix_2_26() {
    let expected = fs::read(recorded().join("show-recursive-chain.json")).expect("read");
    let v: serde_json::Value = serde_json::from_slice(&expected).expect("json");
    // The chain's top derivation is the one no other shown derivation depends on.
    let obj = v.as_object().expect("object");
    let inputs: Vec<&str> = obj
        .values()
        .flat_map(|d| d["inputDrvs"].as_object().expect("inputDrvs").keys().map(String::as_str))
        .collect();
    let top = obj.keys().find(|k| !inputs.contains(&k.as_str())).expect("a top derivation");
    let file = recorded().join("store").join(top.trim_start_matches("/nix/store/"));
    let out = run_ok(casnix().env_remove("NIX_STORE_DIR").args(["derivation", "show", "-r"]).arg(file));
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&expected));
}

#[test]
fn derivation_show_invalid_utf8_fails_like_nix() {
    let base = fs::read_to_string(recorded().join("invalid-utf8.path")).expect("read");
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join(base.trim().trim_start_matches("/nix/store/"));
    fs::copy(recorded().join("invalid-utf8.drv"), &file).expect("copy");
    let out = run(casnix().env_remove("NIX_STORE_DIR").args(["derivation", "show"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let expected = fs::read_to_string(recorded().join("show-invalid-utf8.stderr")).expect("read");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), expected.trim_end());
}

#[test]
fn nar_ls_equals_nix() {
    let nix = NixStore::new();
    let trees = tempfile::tempdir().expect("tempdir");
    for i in [5u64, 6, 8, 2, 0, 1] {
        let tree = make_tree(trees.path(), 2000 + i);
        let nar = trees.path().join(format!("t{i}.nar"));
        fs::write(&nar, run_ok(nix.cmd("nix-store").arg("--dump").arg(&tree))).expect("write nar");
        for flags in [&[][..], &["-R"], &["-l"], &["-R", "-l"], &["-d"]] {
            let ours = run_ok(casnix().args(["nar", "ls"]).args(flags).arg(&nar).arg("/"));
            let theirs = run_ok(nix.cmd("nix").args(["nar", "ls"]).args(flags).arg(&nar).arg("/"));
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "tree {i} flags {flags:?}");
        }
        for flags in [&["--json"][..], &["--json", "-R"]] {
            let ours = run_ok(casnix().args(["nar", "ls"]).args(flags).arg(&nar).arg("/"));
            let theirs = run_ok(nix.cmd("nix").args(["nar", "ls"]).args(flags).arg(&nar).arg("/"));
            let a: serde_json::Value = serde_json::from_slice(&ours).expect("our json");
            match serde_json::from_slice::<serde_json::Value>(&theirs) {
                Ok(b) => assert_eq!(a, b, "tree {i} flags {flags:?}"),
                // Nix 2.8 writes non-UTF-8 names into its "JSON" raw, which no parser accepts;
                // ours escapes them (lossily) and stays valid JSON.
                Err(_) => assert!(std::str::from_utf8(&theirs).is_err(), "tree {i}: Nix printed invalid JSON"),
            }
        }
    }
}

#[test]
fn hash_convert_equals_nix() {
    let nix = NixStore::new();
    let inputs = [
        ("sha256", "sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts="),
        ("sha1", "sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0"),
        ("sha512", "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ];
    for (algo, hash) in inputs {
        for (ours_to, nix_sub) in [("base16", "to-base16"), ("nix32", "to-base32"), ("base64", "to-base64"), ("sri", "to-sri")] {
            let ours = run_ok(casnix().args(["hash", "convert", "--hash-algo", algo, "--to", ours_to, hash]));
            let theirs = run_ok(nix.cmd("nix").args(["hash", nix_sub, "--type", algo, hash]));
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{algo} {hash} to {ours_to}");
        }
    }
}

#[test]
fn keys_and_narinfo_signatures_interoperate_with_nix() {
    let nix = NixStore::new();
    let dir = nix.dir.path();
    // Our key; Nix derives the same public key from it.
    let secret = run_ok(casnix().args(["key", "generate", "casnix-test-1"]));
    fs::write(dir.join("secret"), &secret).expect("write key");
    let ours_public = run_pipe(casnix().args(["key", "public"]), &secret);
    let nix_public = run_pipe(nix.cmd("nix").args(["key", "convert-secret-to-public"]), &secret);
    assert_eq!(String::from_utf8_lossy(&ours_public).trim(), String::from_utf8_lossy(&nix_public).trim());
    let public = String::from_utf8_lossy(&ours_public).trim().to_owned();

    // A binary cache written by Nix, then signed by us.
    let trees = tempfile::tempdir().expect("tempdir");
    let tree = make_tree(trees.path(), 3005);
    let path = String::from_utf8(run_ok(nix.cmd("nix-store").arg("--add").arg(&tree))).expect("utf-8");
    let cache = dir.join("cache");
    run_ok(nix.cmd("nix").args(["copy", "--to"]).arg(format!("file://{}?compression=none", cache.display())).arg(path.trim()));
    let narinfos: Vec<PathBuf> = fs::read_dir(&cache)
        .expect("read cache")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "narinfo"))
        .collect();
    assert_eq!(narinfos.len(), 1);
    let unsigned = run(casnix().env_remove("NIX_STORE_DIR").args(["narinfo", "verify", "--trusted-key", &public]).args(&narinfos));
    assert!(!unsigned.status.success(), "an unsigned narinfo must fail verification");
    run_ok(casnix().env_remove("NIX_STORE_DIR").args(["narinfo", "sign", "--key-file"]).arg(dir.join("secret")).args(&narinfos));
    run_ok(casnix().env_remove("NIX_STORE_DIR").args(["narinfo", "verify", "--trusted-key", &public]).args(&narinfos));

    // Nix trusts what we signed: a fresh store copies the path from the cache with that key.
    let other = NixStore::new();
    run_ok(
        other
            .cmd("nix")
            .args(["copy", "--from"])
            .arg(format!("file://{}", cache.display()))
            .args(["--option", "trusted-public-keys", &public, "--option", "require-sigs", "true"])
            .arg(path.trim()),
    );
    // A tampered narinfo fails.
    let text = fs::read_to_string(&narinfos[0]).expect("read narinfo");
    let tampered = text.replace("NarSize: ", "NarSize: 1");
    fs::write(&narinfos[0], tampered).expect("write");
    let bad = run(casnix().env_remove("NIX_STORE_DIR").args(["narinfo", "verify", "--trusted-key", &public]).args(&narinfos));
    assert!(!bad.status.success(), "a tampered narinfo must fail verification");
}

fn run_pipe(cmd: &mut std::process::Command, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Asserts a clean failure: exit 1, a single `error:` line on stderr, no panic.
fn assert_clean_failure(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: exit status {:?}, stderr {stderr}", out.status);
    assert!(stderr.starts_with("error: "), "{what}: stderr {stderr:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: stderr {stderr:?}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

#[test]
fn bad_input_gives_one_clear_error_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let missing = t.join("does-not-exist");
    fs::write(t.join("garbage.nar"), b"nix-archive-1 but not really").expect("write");
    fs::write(t.join("bad.narinfo"), b"StorePath: /nix/store/nonsense\n").expect("write");
    let bad_drv = t.join("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bad.drv");
    fs::write(&bad_drv, b"Derive([(\"out\",").expect("write");
    fs::create_dir(t.join("exists")).expect("mkdir");

    // (name, arguments, standard input)
    type Case<'a> = (&'a str, Vec<std::ffi::OsString>, Option<&'a [u8]>);
    let cases: Vec<Case> = vec![
        ("hash path missing", vec!["hash".into(), "path".into(), missing.clone().into()], None),
        ("hash file on dir", vec!["hash".into(), "file".into(), t.into()], None),
        ("hash convert bad", vec!["hash".into(), "convert".into(), "--hash-algo".into(), "sha256".into(), "xyz".into()], None),
        ("nar pack missing", vec!["nar".into(), "pack".into(), missing.clone().into()], None),
        ("nar ls garbage", vec!["nar".into(), "ls".into(), t.join("garbage.nar").into()], None),
        ("nar unpack garbage", vec!["nar".into(), "unpack".into(), t.join("out").into()], Some(b"\x0d\0\0\0\0\0\0\0nix-archive-1\0\0\0\x01")),
        ("nar unpack truncated", vec!["nar".into(), "unpack".into(), t.join("out2").into()], Some(b"\x0d\0\0\0\0\0\0\0nix-arch")),
        ("nar unpack onto existing", vec!["nar".into(), "unpack".into(), t.join("exists").into()], Some(b"")),
        ("store-path add missing", vec!["store-path".into(), "add".into(), missing.clone().into()], None),
        ("add-fixed bad algo", vec!["store-path".into(), "add-fixed".into(), "sha3".into(), t.into()], None),
        ("store-path bad name", vec!["store-path".into(), "add".into(), "--name".into(), "a b".into(), t.into()], None),
        ("derivation show bad", vec!["derivation".into(), "show".into(), bad_drv.into()], None),
        ("derivation show misnamed", vec!["derivation".into(), "show".into(), t.join("garbage.nar").into()], None),
        ("key public garbage", vec!["key".into(), "public".into()], Some(b"no colon here")),
        ("narinfo verify bad", vec!["narinfo".into(), "verify".into(), "--trusted-key".into(), "k:AAAA".into(), t.join("bad.narinfo").into()], None),
    ];
    for (what, args, stdin) in cases {
        let mut cmd = casnix();
        cmd.args(&args);
        let out = match stdin {
            None => run(&mut cmd),
            Some(input) => {
                use std::io::Write;
                let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
                let mut si = child.stdin.take().expect("stdin");
                let _ = si.write_all(input);
                drop(si);
                child.wait_with_output().expect("wait")
            }
        };
        assert_clean_failure(&out, what);
    }
}
