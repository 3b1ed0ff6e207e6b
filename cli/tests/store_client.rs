//! `casnix store ...` against a real Nix 2.8 `nix-daemon` on an isolated store, compared with
//! what the real `nix-store`/`nix` commands print through the same daemon. `path-info --json`
//! prints Nix 2.26's shape (an object keyed by path, every field present); Nix 2.8's output is
//! converted to it for the comparison, and its keys are checked against Nix 2.26's recorded
//! JSON. These tests need Nix installed (`scripts/test-all.sh` installs it) and fail without it.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use common::daemon::*;
use serde_json::{Map, Value};

/// A closure to look at: a tree added with `nix-store --add`, a flat file, and a built output
/// that refers to the tree, signed.
struct Sample {
    tree: String,
    file: String,
    out: String,
    drv: String,
}

const EXPR: &str = r#"{ tree }:
let t = builtins.storePath tree; in
derivation {
  name = "uses-tree";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo ${t} > $out" ];
}
"#;

fn sample(nix: &NixDaemon) -> Sample {
    let home = nix.path("home");
    let tree = home.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/big"), vec![7u8; 300_000]).unwrap();
    std::fs::write(tree.join("hello.txt"), "hello\n").unwrap();
    std::os::unix::fs::symlink("hello.txt", tree.join("link")).unwrap();
    let tree = ok(&mut nix.nix("nix-store"), &["--add", tree.to_str().unwrap()]).trim().to_owned();
    std::fs::write(home.join("flat.txt"), "flat\n").unwrap();
    let file = ok(&mut nix.nix("nix-store"), &["--add-fixed", "sha256", home.join("flat.txt").to_str().unwrap()]);
    std::fs::write(home.join("expr.nix"), EXPR).unwrap();
    let drv = ok(&mut nix.nix("nix-instantiate"), &[home.join("expr.nix").to_str().unwrap(), "--argstr", "tree", &tree]);
    let out = ok(&mut nix.nix("nix-store"), &["--realise", drv.trim()]);
    let key = home.join("key");
    let secret = ok(&mut nix.nix("nix"), &["key", "generate-secret", "--key-name", "test-1"]);
    std::fs::write(&key, secret).unwrap();
    ok(&mut nix.nix("nix"), &["store", "sign", "--key-file", key.to_str().unwrap(), out.trim()]);
    Sample { tree, file: file.trim().to_owned(), out: out.trim().to_owned(), drv: drv.trim().to_owned() }
}

#[test]
fn ping_and_store_selection() {
    let nix = NixDaemon::start();
    let socket = nix.socket();
    let url = format!("unix://{}", socket.display());
    // Another socket than the default one is shown as its URL.
    let ours = ok(nix.casnix().env_remove("NIX_DAEMON_SOCKET_PATH"), &["ping", "--store", &url]);
    assert_eq!(ours, format!("Store URL: {url}\nVersion: 2.8.0\nProtocol: 1.34\n"));
    // Nix 2.8 prints the same first lines (as notices, on stderr).
    let theirs = output(nix.nix("nix").env_remove("NIX_DAEMON_SOCKET_PATH"), &["store", "ping", "--store", &url]);
    assert!(theirs.status.success());
    assert!(ours.starts_with(String::from_utf8_lossy(&theirs.stderr).as_ref()), "{theirs:?}");
    // The default socket named as a URL is `daemon`, as Nix 2.26 prints it.
    assert!(ok(&mut nix.casnix(), &["ping", "--store", &url]).starts_with("Store URL: daemon\n"));
    // NIX_REMOTE=daemon with the socket in NIX_DAEMON_SOCKET_PATH: the default socket.
    assert!(ok(&mut nix.casnix(), &["info"]).starts_with("Store URL: daemon\nVersion: 2.8.0\n"));
    let json: Value = serde_json::from_str(&ok(&mut nix.casnix(), &["ping", "--json"])).unwrap();
    assert_eq!(json, serde_json::json!({"url": "daemon", "version": "2.8.0"}));
    let mut cmd = nix.casnix();
    cmd.env("NIX_REMOTE", &url).env_remove("NIX_DAEMON_SOCKET_PATH");
    assert!(ok(&mut cmd, &["ping"]).starts_with(&format!("Store URL: {url}\n")));
}

#[test]
fn add_matches_nix_store() {
    let nix = NixDaemon::start();
    let home = nix.path("home");
    let dir = home.join("dir");
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/file"), vec![1u8; 200_000]).unwrap();
    std::os::unix::fs::symlink("a/b/file", dir.join("link")).unwrap();
    let ours = ok(&mut nix.casnix(), &["add", dir.to_str().unwrap()]);
    assert_eq!(ours, ok(&mut nix.nix("nix-store"), &["--add", dir.to_str().unwrap()]));
    let named = ok(&mut nix.casnix(), &["add", "--name", "renamed", dir.to_str().unwrap()]);
    assert!(named.trim().ends_with("-renamed"), "{named}");

    std::fs::write(home.join("data.bin"), vec![9u8; 5000]).unwrap();
    let file = home.join("data.bin");
    let ours = ok(&mut nix.casnix(), &["add", "--mode", "flat", file.to_str().unwrap()]);
    assert_eq!(ours, ok(&mut nix.nix("nix-store"), &["--add-fixed", "sha256", file.to_str().unwrap()]));
    let ours = ok(&mut nix.casnix(), &["add", "--mode", "flat", "--hash-algo", "sha1", file.to_str().unwrap()]);
    assert_eq!(ours, ok(&mut nix.nix("nix-store"), &["--add-fixed", "sha1", file.to_str().unwrap()]));

    // Text: the path `builtins.toFile` gives.
    std::fs::write(home.join("note"), "a note\n").unwrap();
    let ours = ok(&mut nix.casnix(), &["add", "--mode", "text", home.join("note").to_str().unwrap()]);
    let theirs = ok(&mut nix.nix("nix-instantiate"), &["--eval", "--expr", r#"builtins.toFile "note" "a note\n""#]);
    assert_eq!(format!("\"{}\"\n", ours.trim()), theirs);
}

/// `nix path-info --json` of Nix 2.8 in Nix 2.26's shape (see the module documentation).
fn nix_json(nix: &NixDaemon, args: &[&str]) -> Map<String, Value> {
    let mut all = vec!["path-info", "--json"];
    all.extend_from_slice(args);
    let array: Vec<Value> = serde_json::from_str(&ok(&mut nix.nix("nix"), &all)).unwrap();
    array
        .into_iter()
        .map(|v| {
            let mut obj = v.as_object().unwrap().clone();
            let path = obj.remove("path").unwrap().as_str().unwrap().to_owned();
            if obj.remove("valid") == Some(Value::Bool(false)) {
                return (path, Value::Null);
            }
            for (key, default) in [
                ("ca", Value::Null),
                ("deriver", Value::Null),
                ("registrationTime", Value::Null),
                ("ultimate", Value::Bool(false)),
                ("signatures", Value::Array(vec![])),
            ] {
                obj.entry(key).or_insert(default);
            }
            (path, Value::Object(obj))
        })
        .collect()
}

/// Nix 2.26 takes a `.drv` argument as the derivation itself; Nix 2.8 takes it as its outputs
/// unless told `--derivation`.
fn for_nix_2_8<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = args.to_vec();
    if args.iter().any(|a| a.ends_with(".drv")) {
        out.insert(0, "--derivation");
    }
    out
}

#[test]
fn path_info_matches_nix() {
    let nix = NixDaemon::start();
    let s = sample(&nix);
    let recorded = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/nix-2.26.3/path-info/impure.json"
    ))
    .unwrap();
    let recorded: Map<String, Value> = serde_json::from_str(&recorded).unwrap();
    let recorded_keys: Vec<&String> = recorded.keys().collect();

    for args in [
        vec![s.out.as_str()],
        vec![s.out.as_str(), s.tree.as_str(), s.file.as_str()],
        vec!["-r", s.out.as_str()],
        vec!["-r", s.drv.as_str()],
        vec!["-S", "-r", s.out.as_str()],
        vec!["--all"],
    ] {
        let text = ok(&mut nix.casnix(), &[&["path-info", "--json"][..], &args].concat());
        assert!(text.ends_with('\n') && !text.trim_end().contains('\n'), "one compact line: {text}");
        let ours: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(ours, nix_json(&nix, &for_nix_2_8(&args)), "{args:?}");
        for value in ours.values() {
            let keys: Vec<&String> = value.as_object().unwrap().keys().filter(|k| *k != "closureSize").collect();
            assert_eq!(keys, recorded_keys, "the keys of Nix 2.26, in its order");
        }
        // Keys sorted, no spaces: what Nix 2.26's `dump()` prints.
        assert_eq!(text.trim_end(), serde_json::to_string(&ours).unwrap());
    }
    // The signature and the content address show.
    let ours: Map<String, Value> = serde_json::from_str(&ok(&mut nix.casnix(), &["path-info", "--json", &s.out])).unwrap();
    assert!(ours[&s.out]["signatures"][0].as_str().unwrap().starts_with("test-1:"));
    let ours: Map<String, Value> = serde_json::from_str(&ok(&mut nix.casnix(), &["path-info", "--json", &s.file])).unwrap();
    assert!(ours[&s.file]["ca"].as_str().unwrap().starts_with("fixed:sha256:"));

    // Text forms, line for line.
    for args in [
        vec![s.out.as_str()],
        vec!["-r", s.out.as_str()],
        vec!["-r", s.drv.as_str()],
        vec!["-s", "-r", s.out.as_str()],
        vec!["-S", "-r", s.out.as_str()],
        vec!["-s", "-S", "--sigs", "-r", s.out.as_str(), s.file.as_str()],
        vec!["--sigs", s.out.as_str(), s.tree.as_str()],
        vec!["--all"],
        vec!["--all", "-s"],
    ] {
        let ours = ok(&mut nix.casnix(), &[&["path-info"][..], &args].concat());
        let theirs = ok(&mut nix.nix("nix"), &[&["path-info"][..], &for_nix_2_8(&args)].concat());
        assert_eq!(ours, theirs, "{args:?}");
    }

    // A symlink to a store path works like the path.
    let link = nix.path("home/result");
    std::os::unix::fs::symlink(&s.out, &link).unwrap();
    assert_eq!(ok(&mut nix.casnix(), &["path-info", link.to_str().unwrap()]), format!("{}\n", s.out));

    // An invalid path: an error in text form, `null` in JSON (Nix 2.8: `"valid": false`).
    let bogus = format!("{}/00000000000000000000000000000000-bogus", nix.store());
    let out = output(&mut nix.casnix(), &["path-info", &bogus]);
    assert_one_line_error(&out, &format!("path '{bogus}' is not valid"));
    let ours: Map<String, Value> = serde_json::from_str(&ok(&mut nix.casnix(), &["path-info", "--json", &bogus, &s.tree])).unwrap();
    assert_eq!(ours, nix_json(&nix, &[&bogus, &s.tree]));
    assert_eq!(ours[&bogus], Value::Null);
}

#[test]
fn dump_and_cat_match_nix() {
    let nix = NixDaemon::start();
    let s = sample(&nix);
    for path in [&s.tree, &s.file, &s.out] {
        let ours = output(&mut nix.casnix(), &["dump", path]);
        assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
        let theirs = output(&mut nix.nix("nix-store"), &["--dump", path]);
        assert_eq!(ours.stdout, theirs.stdout, "{path}");
    }
    for file in [format!("{}/hello.txt", s.tree), format!("{}/sub/big", s.tree), s.file.clone(), s.out.clone()] {
        let ours = output(&mut nix.casnix(), &["cat", &file]);
        assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
        let theirs = output(&mut nix.nix("nix"), &["store", "cat", &file]);
        assert_eq!(ours.stdout, theirs.stdout, "{file}");
    }
    for (file, message) in [
        (format!("{}/sub", s.tree), "is not a regular file"),
        (format!("{}/link", s.tree), "is not a regular file"),
        (format!("{}/missing", s.tree), "does not exist"),
    ] {
        let ours = output(&mut nix.casnix(), &["cat", &file]);
        assert_one_line_error(&ours, &format!("path '{file}' {message}"));
        let theirs = output(&mut nix.nix("nix"), &["store", "cat", &file]);
        assert!(!theirs.status.success(), "{file}");
    }
}

/// Builds the same paths in a store: a rooted one, and dead ones of several sizes.
fn gc_sample(nix: &NixDaemon) -> (String, Vec<String>) {
    let home = nix.path("home");
    let mut dead = Vec::new();
    for (i, size) in [10usize, 5000, 300_000].into_iter().enumerate() {
        let file = home.join(format!("dead{i}"));
        std::fs::write(&file, vec![b'd'; size]).unwrap();
        dead.push(ok(&mut nix.nix("nix-store"), &["--add", file.to_str().unwrap()]).trim().to_owned());
    }
    let kept = home.join("kept");
    std::fs::write(&kept, "kept\n").unwrap();
    let kept = ok(&mut nix.nix("nix-store"), &["--add", kept.to_str().unwrap()]).trim().to_owned();
    let link = home.join("root");
    ok(&mut nix.nix("nix-store"), &["--realise", &kept, "--add-root", link.to_str().unwrap(), "--indirect"]);
    (kept, dead)
}

#[test]
fn gc_and_delete_match_nix_store() {
    let (ours, theirs) = (NixDaemon::start(), NixDaemon::start());
    let (kept, dead) = gc_sample(&ours);
    let _ = gc_sample(&theirs);
    for flag in ["--print-roots", "--print-live", "--print-dead"] {
        let a = ok(&mut ours.casnix(), &["gc", flag]);
        let b = ok(&mut ours.nix("nix-store"), &["--gc", flag]);
        assert_eq!(a, b, "{flag}");
    }
    assert!(ok(&mut ours.casnix(), &["gc", "--print-roots"]).contains(&format!(" -> {kept}\n")));

    // Deleting one path, then collecting the rest: the same report as Nix on a twin store.
    let deleted = ok(&mut ours.casnix(), &["delete", &dead[0]]);
    let twin_dead = ok(&mut theirs.nix("nix-store"), &["--gc", "--print-dead"]);
    let twin_first = twin_dead.lines().find(|l| l.ends_with("-dead0")).unwrap().to_owned();
    assert_eq!(deleted, ok(&mut theirs.nix("nix-store"), &["--delete", &twin_first]));
    assert_eq!(deleted, "1 store paths deleted, 0.00 MiB freed\n");
    let live = output(&mut ours.casnix(), &["delete", &kept]);
    assert_one_line_error(&live, "since it is still alive");
    let collected = ok(&mut ours.casnix(), &["gc"]);
    assert_eq!(collected, ok(&mut theirs.nix("nix-store"), &["--gc"]));
    assert!(collected.starts_with("2 store paths deleted, "), "{collected}");
    assert_eq!(ok(&mut ours.casnix(), &["path-info", "--all"]), format!("{kept}\n"));
    assert_eq!(ok(&mut ours.casnix(), &["gc", "--max-freed", "1K"]), "0 store paths deleted, 0.00 MiB freed\n");
}

#[test]
fn verify_matches_nix_store() {
    let nix = NixDaemon::start();
    let s = sample(&nix);
    assert_eq!(ok(&mut nix.casnix(), &["verify", "--check-contents"]), "");
    ok(&mut nix.nix("nix-store"), &["--verify", "--check-contents"]);
    // Corrupt a file: both report the modification and fail.
    let victim = format!("{}/hello.txt", s.tree);
    let mut perms = std::fs::metadata(&victim).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&victim, perms).unwrap();
    std::fs::write(&victim, "tampered\n").unwrap();
    let ours = output(&mut nix.casnix(), &["verify", "--check-contents"]);
    let theirs = output(&mut nix.nix("nix-store"), &["--verify", "--check-contents"]);
    assert!(!ours.status.success() && !theirs.status.success());
    let (ours_err, theirs_err) = (String::from_utf8_lossy(&ours.stderr), String::from_utf8_lossy(&theirs.stderr));
    assert!(ours_err.contains(&format!("path '{}' was modified!", s.tree)), "{ours_err}");
    assert!(theirs_err.contains(&format!("path '{}' was modified!", s.tree)), "{theirs_err}");
    assert!(ours_err.trim_end().ends_with("error: not all store errors were fixed"), "{ours_err}");
}

#[test]
fn errors_are_one_line() {
    let nix = NixDaemon::start();
    let missing = nix.path("no-such-socket");
    let out = output(&mut nix.casnix(), &["ping", "--store", &format!("unix://{}", missing.display())]);
    assert_one_line_error(&out, &format!("cannot connect to the daemon at '{}'", missing.display()));
    let out = output(&mut nix.casnix(), &["ping", "--store", "s3://bucket"]);
    assert_one_line_error(&out, "unsupported store 's3://bucket'");
    let out = output(&mut nix.casnix(), &["ping", "--store", "unix:///x?y=z"]);
    assert_one_line_error(&out, "store URL parameters are not supported");
    let out = output(&mut nix.casnix(), &["path-info", "/not/in/the/store"]);
    assert_one_line_error(&out, "path '/not/in/the/store' is not in the Nix store");
    let out = output(&mut nix.casnix(), &["dump", &format!("{}/not-a-store-path", nix.store())]);
    assert_one_line_error(&out, "not-a-store-path");
    let bogus = format!("{}/00000000000000000000000000000000-bogus", nix.store());
    for sub in ["dump", "cat"] {
        let out = output(&mut nix.casnix(), &[sub, &bogus]);
        assert_one_line_error(&out, &format!("path '{bogus}' is not valid"));
    }
    let out = output(&mut nix.casnix(), &["add", &nix.path("home/missing").to_string_lossy()]);
    assert_one_line_error(&out, "cannot read");
    // A path the daemon refuses: its message, without colour codes.
    let file = nix.path("home/x");
    std::fs::write(&file, "x").unwrap();
    let added = ok(&mut nix.casnix(), &["add", file.to_str().unwrap()]);
    let link = nix.path("home/root");
    ok(&mut nix.nix("nix-store"), &["--realise", added.trim(), "--add-root", link.to_str().unwrap(), "--indirect"]);
    let out = output(&mut nix.casnix(), &["delete", added.trim()]);
    assert_one_line_error(&out, &format!("Cannot delete path '{}' since it is still alive", added.trim()));
}
