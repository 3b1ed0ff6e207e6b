//! `casnix instantiate` and `casnix build` against a real `casnix-daemon` on an isolated root,
//! compared with Nix 2.8's `nix-instantiate` on the same store directory: the same `.drv` paths
//! and byte-identical `.drv` files (and the same other store paths: sources, `toFile` texts).
//! The expressions are those compat-tests instantiate and build, plus derivations using
//! structured attributes, fixed outputs, `__ignoreNulls` and deep (`drvPath`) contexts.
//!
//! Needs `casnix-daemon` built beside the test binary (`cargo build --release -p daemon --bin
//! casnix-daemon`), Nix 2.8 and Debian's static busybox (`scripts/test-all.sh` installs them).

#![allow(clippy::unwrap_used)]

mod common;

use common::casnix_daemon::{self, CasnixDaemon};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `nix.conf` of every root.
const CONF: &str = "substituters =\nsandbox = false\nbuild-users-group =\n";

/// A `mk` function building with the store's busybox (as compat-tests' `lib.nix`).
const LIB: &str = r#"rec {
  busybox = "${./busybox-dir}/bin/busybox";
  mk = { name, script, ... }@attrs:
    derivation (removeAttrs attrs [ "script" ] // {
      inherit name;
      system = builtins.currentSystem;
      builder = busybox;
      args = [ "sh" "-c" script ];
    });
}
"#;

/// compat-tests' `derivation_expr`.
const COMPAT_DRV: &str = r#"let
  script = builtins.toFile "build.sh" "echo building > $out";
in derivation {
  name = "compat-drv";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ script ];
  src = ./source.txt;
  outputs = [ "out" "dev" ];
}
"#;

/// compat-tests' build expressions, shortened but with the same shapes.
const MULTI: &str = r#"let lib = import ./lib.nix; in rec {
  dep = lib.mk { name = "dep"; script = "mkdir $out; echo dependency > $out/file"; };
  multi = lib.mk {
    name = "multi";
    outputs = [ "out" "dev" "lib" ];
    inherit dep;
    script = "mkdir $out $dev $lib; echo $lib $dep > $out/main";
  };
  user = lib.mk { name = "user"; script = "mkdir $out; echo ${multi.dev} > $out/uses-dev"; };
  fixed = lib.mk {
    name = "fixed";
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "0b0d5ea6b7a3d70e4e4a6a87fd2b9bd5f5d02af1e0e5a3e6f1d8e1c10b07b6a1";
    script = "echo 'fixed contents' > $out";
  };
}
"#;

const GRAPH: &str = r#"let
  lib = import ./lib.nix;
  node = i: lib.mk {
    name = "node-${toString i}";
    deps = if i == 0 then [ ] else [ (node (i / 2)) (node (i / 3)) ];
    script = "mkdir $out; for d in $deps; do cat $d/name >> $out/names; done";
  };
  nodes = builtins.genList node 20;
in lib.mk { name = "graph-top"; inherit nodes; script = "mkdir $out"; }
"#;

/// The attributes `derivationStrict` treats specially.
const SPECIAL: &str = r#"let
  a = derivation { name = "a"; builder = "/bin/sh"; system = "x86_64-linux"; args = [ "-c" "echo hi > $out" ]; };
  b = derivation { name = "b"; builder = "/bin/sh"; system = "x86_64-linux"; outputs = [ "out" "dev" ];
    x = a; y = "${a.drvPath}"; z = [ 1 2 null true 1.5 ]; f = ./source.txt; };
  nar = derivation { name = "nar"; builder = "/bin/sh"; system = "x86_64-linux";
    outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; outputHashMode = "recursive"; };
  flat = derivation { name = "flat"; builder = "/bin/sh"; system = "x86_64-linux";
    outputHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; outputHashAlgo = "sha256"; };
  s = derivation { name = "s"; builder = "/bin/sh"; system = "x86_64-linux"; __structuredAttrs = true;
    n = null; l = [ 1 "x" a ]; at = { q = 1.5; r = [ ]; }; outputs = [ "out" "lib" ]; dep = b.dev; };
  c = derivation { name = "c"; builder = "/bin/sh"; system = "x86_64-linux"; __ignoreNulls = true;
    n = null; dep = nar; dep2 = flat; inherit s; passAsFile = [ "big" ]; big = "text"; };
  filtered = derivation { name = "filtered"; builder = "/bin/sh"; system = "x86_64-linux";
    src = builtins.path { path = ./.; name = "filtered"; filter = p: t: t != "directory" && baseNameOf p != "special.nix"; };
    src2 = builtins.filterSource (p: t: t == "directory" || builtins.match ".*[.]nix" p != null) ./.; };
in { inherit a b nar flat s c filtered; }
"#;

/// An isolated root: store, state, log, conf and home under a temporary directory.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::Builder::new().prefix("casnix-inst-").tempdir_in("/tmp").unwrap();
        let root = Root { dir };
        root.reset();
        let busybox = fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
        let bin = root.path("exprs/busybox-dir/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("busybox"), busybox).unwrap();
        fs::set_permissions(bin.join("busybox"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for (name, text) in [
            ("lib.nix", LIB),
            ("compat.nix", COMPAT_DRV),
            ("multi.nix", MULTI),
            ("graph.nix", GRAPH),
            ("special.nix", SPECIAL),
            ("args.nix", ARGS),
        ] {
            fs::write(root.path("exprs").join(name), text).unwrap();
        }
        fs::write(root.path("exprs/source.txt"), "source file of the derivation\n").unwrap();
        root
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Empties the store and state (keeping the expressions).
    fn reset(&self) {
        for sub in ["store", "state", "log", "conf", "home"] {
            let p = self.path(sub);
            if p.exists() {
                fs::remove_dir_all(&p).unwrap();
            }
            fs::create_dir_all(&p).unwrap();
        }
        fs::write(self.path("conf/nix.conf"), CONF).unwrap();
    }

    fn command(&self, program: &str, remote: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_STORE_DIR", self.path("store"))
            .env("NIX_STATE_DIR", self.path("state"))
            .env("NIX_LOG_DIR", self.path("log"))
            .env("NIX_CONF_DIR", self.path("conf"))
            .env("NIX_DAEMON_SOCKET_PATH", self.path("socket"))
            .env("HOME", self.path("home"))
            .env("NIX_REMOTE", remote)
            .env_remove("NIX_PATH")
            .env_remove("NIX_CONFIG")
            .current_dir(self.path("exprs"))
            .stdin(Stdio::null());
        cmd
    }

    fn casnix(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_casnix"), "daemon")
    }

    /// Every store entry: name and, for `.drv` files, the bytes.
    fn store_contents(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        fs::read_dir(self.path("store"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .map(|n| {
                let bytes = n.ends_with(".drv").then(|| fs::read(self.path("store").join(&n)).unwrap());
                (n, bytes)
            })
            .collect()
    }
}

/// Starts `casnix-daemon` on the root.
fn start_daemon(root: &Root) -> CasnixDaemon {
    let command = root.command(casnix_daemon::binary().to_str().unwrap(), "local");
    CasnixDaemon::start(command, &root.path("socket"), &root.path("daemon.log"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A function of automatic arguments (`--arg`, `--argstr`).
const ARGS: &str = r#"{ name, n, lib ? import ./lib.nix }:
lib.mk { inherit name; script = "echo ${toString (n * 2)} > $out"; }
"#;

/// The instantiations compared: file, attribute and further arguments.
const CASES: &[(&str, Option<&str>, &[&str])] = &[
    ("compat.nix", None, &[]),
    ("multi.nix", None, &[]),
    ("multi.nix", Some("multi"), &[]),
    ("multi.nix", Some("user"), &[]),
    ("multi.nix", Some("fixed"), &[]),
    ("graph.nix", None, &[]),
    ("special.nix", None, &[]),
    ("args.nix", None, &["--argstr", "name", "with-args", "--arg", "n", "20 + 1"]),
];

fn args_of(file: &str, attr: Option<&str>, extra: &[&str]) -> Vec<String> {
    let mut args = vec![file.to_string()];
    if let Some(a) = attr {
        args.extend(["-A".to_string(), a.to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

#[test]
fn same_derivations_as_nix() {
    let root = Root::new();
    let mut theirs = Vec::new();
    for (file, attr, extra) in CASES {
        theirs.push(ok(root.command("nix-instantiate", "local").args(args_of(file, *attr, extra))));
    }
    let their_store = root.store_contents();
    root.reset();
    let daemon = start_daemon(&root);
    let mut ours = Vec::new();
    for (file, attr, extra) in CASES {
        ours.push(ok(root.casnix().arg("instantiate").args(args_of(file, *attr, extra))));
    }
    drop(daemon);
    assert_eq!(ours, theirs);
    let our_store = root.store_contents();
    assert_eq!(our_store.keys().collect::<Vec<_>>(), their_store.keys().collect::<Vec<_>>());
    for (name, bytes) in &their_store {
        assert_eq!(&our_store[name], bytes, "{name} differs");
    }
    assert!(their_store.keys().filter(|n| n.ends_with(".drv")).count() > 25);
}

/// Error messages: Nix 2.26's (checked by hand against 2.26.3), also checked against Nix 2.8
/// through the same daemon where 2.8 says the same (`true`).
#[test]
fn errors_as_nix() {
    let root = Root::new();
    let fixed_two = "derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputs = [ \"out\" \"dev\" ]; outputHash = \"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"; }";
    let cases: &[(&str, &str, bool)] = &[
        ("derivation { name = \"x\"; system = \"x\"; }", "required attribute 'builder' missing", true),
        ("derivation { name = \"x\"; builder = \"x\"; }", "required attribute 'system' missing", true),
        ("derivation { builder = \"x\"; system = \"x\"; }", "derivation name missing", true),
        ("derivation { name = \"a b\"; builder = \"x\"; system = \"x\"; }", "invalid derivation name: name 'a b' contains illegal character ' '. Please pass a different 'name'.", false),
        ("derivation { name = \"x.drv\"; builder = \"x\"; system = \"x\"; }", "derivation names are allowed to end in '.drv' only if they produce a single derivation file", false),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputHash = \"\"; }", "empty hash requires explicit hash algorithm", false),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; __contentAddressed = true; }", "experimental Nix feature 'ca-derivations' is disabled", true),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputs = [ \"out\" \"out\" ]; }", "duplicate derivation output 'out'", true),
        (fixed_two, "multiple outputs are not supported in fixed-output derivations", true),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputHashMode = \"bad\"; }", "invalid value 'bad' for 'outputHashMode' attribute", true),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputHash = \"sha256:abc\"; }", "hash 'abc' has wrong length for hash algorithm 'sha256'", false),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputs = [ \"drvPath\" ]; }", "invalid derivation output name 'drvPath'", false),
        ("derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputs = [ \"a/b\" ]; }", "name 'x-a/b' contains illegal character '/'", false),
    ];
    let daemon = start_daemon(&root);
    for (expr, message, nix28_same) in cases {
        let out = run(root.casnix().args(["instantiate", "--expr", expr]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "casnix on {expr}: {stderr}");
        if *nix28_same {
            let out = run(root.command("nix-instantiate", "daemon").args(["--expr", expr]));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && stderr.contains(message), "nix on {expr}: {stderr}");
        }
    }
    // An unknown `outputHashAlgo` without `outputHash` is ignored, as Nix 2.26 does.
    let unknown_algo = "derivation { name = \"x\"; builder = \"x\"; system = \"x\"; outputHashAlgo = \"foo\"; }";
    ok(root.casnix().args(["instantiate", "--expr", unknown_algo]));
    drop(daemon);
}

/// Import from derivation: a derivation writes Nix code that is imported, read and used (twice
/// from one derivation), and `casnix build` builds the result and links it.
#[test]
fn import_from_derivation_and_build() {
    let root = Root::new();
    fs::write(
        root.path("exprs/ifd.nix"),
        r#"let
  lib = import ./lib.nix;
  gen = lib.mk { name = "gen"; script = "echo '{ x = 40; y = \"from-ifd\"; }' > $out"; };
  dir = lib.mk { name = "dir"; script = "mkdir $out; echo 2 > $out/two.nix"; };
  v = import gen;
  two = import "${dir}/two.nix";
in lib.mk {
  name = "final-${v.y}";
  script = "echo '${toString (v.x + two)} ${builtins.readFile gen}' > $out";
}
"#,
    )
    .unwrap();
    let _daemon = start_daemon(&root);
    let out = ok(root.casnix().args(["build", "ifd.nix", "-o", "res"]));
    let out_path = out.trim();
    assert!(out_path.ends_with("-final-from-ifd"), "{out}");
    assert_eq!(fs::read_link(root.path("exprs/res")).unwrap(), Path::new(out_path));
    assert_eq!(fs::read_to_string(out_path).unwrap(), "42 { x = 40; y = \"from-ifd\"; }\n\n");
    // Nix 2.8 through the same daemon gets the same derivation.
    let ours = ok(root.casnix().args(["instantiate", "ifd.nix"]));
    let theirs = ok(root.command("nix-instantiate", "daemon").arg("ifd.nix"));
    assert_eq!(ours, theirs);
    // nix-build's links: `result`, and `result-<output>` for other outputs.
    let out = ok(root.casnix().args(["build", "multi.nix", "-A", "multi.dev", "-A", "dep"]));
    let paths: Vec<&str> = out.lines().collect();
    assert_eq!(paths.len(), 2);
    assert_eq!(fs::read_link(root.path("exprs/result-dev")).unwrap(), Path::new(paths[0]));
    assert_eq!(fs::read_link(root.path("exprs/result-2")).unwrap(), Path::new(paths[1]));
    assert_eq!(fs::read_to_string(Path::new(paths[1]).join("file")).unwrap(), "dependency\n");
    // `casnix eval --read-write-mode` writes and builds through the daemon, as
    // `nix-instantiate --eval --read-write-mode`: IFD, and files made by `toFile` can be read.
    let expr = r#"[ (builtins.readFile (builtins.toFile "note" "written")) (builtins.readFile (import ./ifd.nix)) ]"#;
    let ours = ok(root.casnix().args(["eval", "--read-write-mode", "--strict", "--expr", expr]));
    let theirs = ok(root.command("nix-instantiate", "daemon").args(["--eval", "--read-write-mode", "--strict", "--expr", expr]));
    assert_eq!(ours, theirs);
    assert_eq!(ours, "[ \"written\" \"42 { x = 40; y = \\\"from-ifd\\\"; }\\n\\n\" ]\n");
    // Without it nothing is written: the file does not exist.
    let out = run(root.casnix().args(["eval", "--strict", "--expr", r#"builtins.readFile (builtins.toFile "other" "x")"#]));
    assert!(!out.status.success());
}

/// Runs `git` in `dir` with fixed identities and dates.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2023-11-14T22:13:20Z")
        .env("GIT_COMMITTER_DATE", "2023-11-14T22:13:20Z")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The fetchers, offline: a `file://` file, a tarball and a local Git repository (clean, at a
/// branch, dirty). The values match Nix 2.8's `nix-instantiate --eval` (and, by hand, 2.26.3's),
/// and a derivation using them gets the same `.drv` through the daemon, with the fetched paths
/// added to the store.
#[test]
fn fetchers_as_nix() {
    let root = Root::new();
    let fx = root.path("exprs/fx");
    fs::create_dir_all(fx.join("t/proj/sub")).unwrap();
    fs::write(fx.join("data.txt"), "hello\n").unwrap();
    fs::write(fx.join("t/proj/a"), "a\n").unwrap();
    fs::set_permissions(fx.join("t/proj/a"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(fx.join("t/proj/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("a", fx.join("t/proj/l")).unwrap();
    let tar = Command::new("tar").args(["-czf", "proj.tar.gz", "-C", "t", "proj"]).current_dir(&fx).status().unwrap();
    assert!(tar.success());
    let repo = fx.join("repo");
    fs::create_dir_all(repo.join("d")).unwrap();
    git(&repo, &["init", "-q"]);
    fs::write(repo.join("f"), "one\n").unwrap();
    fs::write(repo.join("d/g"), "two\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["branch", "old"]);
    fs::write(repo.join("h"), "three\n").unwrap();
    git(&repo, &["add", "h"]);
    git(&repo, &["commit", "-qm", "two"]);
    let fx_s = fx.to_str().unwrap();
    let expr = format!(
        r#"rec {{
  u = builtins.fetchurl "file://{fx_s}/data.txt";
  u2 = builtins.fetchurl {{ url = "file://{fx_s}/data.txt"; sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; name = "named"; }};
  t = builtins.fetchTarball "file://{fx_s}/proj.tar.gz";
  g = builtins.removeAttrs (builtins.fetchGit {fx_s}/repo) [ "dirtyRev" "dirtyShortRev" ];
  g1 = builtins.fetchGit {{ url = "{fx_s}/repo"; ref = "old"; }};
  drv = derivation {{ name = "fetched"; builder = "/bin/sh"; system = "x86_64-linux"; inherit u u2 t; g = g.outPath; g1 = g1.outPath; }};
}}
"#
    );
    fs::write(root.path("exprs/fetch.nix"), expr).unwrap();
    let _daemon = start_daemon(&root);
    for dirty in [false, true] {
        if dirty {
            fs::write(repo.join("f"), "changed\n").unwrap();
        }
        let values = "builtins.removeAttrs (import ./fetch.nix) [ \"drv\" ]";
        let ours = ok(root.casnix().args(["eval", "--strict", "--expr", values]));
        let theirs = ok(root.command("nix-instantiate", "daemon").args(["--eval", "--strict", "--expr", values]));
        assert_eq!(ours, theirs);
        let ours = ok(root.casnix().args(["instantiate", "fetch.nix", "-A", "drv"]));
        let theirs = ok(root.command("nix-instantiate", "daemon").args(["fetch.nix", "-A", "drv"]));
        assert_eq!(ours, theirs);
    }
    let paths = ok(root.casnix().args(["eval", "--strict", "--json", "--expr", "with import ./fetch.nix; [ u u2 t g.outPath g1.outPath ]"]));
    for p in serde_json::from_str::<Vec<String>>(&paths).unwrap() {
        assert!(Path::new(&p).exists(), "{p} was not added");
    }
    let bad = run(root.casnix().args(["eval", "--expr", "builtins.fetchurl \"https://example.invalid/x\""]));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unable to download 'https://example.invalid/x'"));
}

/// Floating content-addressed (with a dependent deferred derivation) and impure derivations, with
/// the experimental features enabled: the same `.drv` paths as Nix 2.8 through the same daemon
/// (text-hashed outputs, which 2.8 lacks, were checked by hand against 2.26.3).
#[test]
fn content_addressed_as_nix() {
    let root = Root::new();
    fs::write(
        root.path("exprs/ca.nix"),
        r#"rec {
  ca = derivation { name = "ca"; builder = "/bin/sh"; system = "x86_64-linux"; __contentAddressed = true; outputs = [ "out" "dev" ]; };
  dep = derivation { name = "dep"; builder = "/bin/sh"; system = "x86_64-linux"; x = ca.dev; y = "${ca}"; };
  imp = derivation { name = "imp"; builder = "/bin/sh"; system = "x86_64-linux"; __impure = true; outputHashAlgo = "sha512"; outputHashMode = "flat"; };
}
"#,
    )
    .unwrap();
    let _daemon = start_daemon(&root);
    let args = ["ca.nix", "-A", "ca", "-A", "dep", "-A", "imp", "--extra-experimental-features", "ca-derivations impure-derivations"];
    let ours = ok(root.casnix().arg("instantiate").args(args));
    let theirs = ok(root.command("nix-instantiate", "daemon").args(args));
    assert_eq!(ours, theirs);
    assert_eq!(ours.lines().count(), 3);
}
