//! Building derivations through the daemon: `nix-store --realise`, `nix-build` (result links,
//! `-o`, `-A`), `nix build --print-out-paths`, several outputs, fixed-output derivations (right
//! and wrong hash), failing builds, a 50-derivation graph with shared inputs, and the build logs
//! (`nix log`, `nix-store -l`).
//!
//! The builders are Debian's static busybox (`busybox-static`, installed by
//! `scripts/test-all.sh`), imported by the expressions as `<hash>-busybox-dir/bin/busybox`: the
//! file keeps its name, so busybox still runs as its multi-call self (Debian's refuses to run
//! as `<hash>-busybox`).

use compat_tests::{ClientKind, Scenario, Session};
use sha2::{Digest, Sha256};

/// The `sandbox` setting of casnix-daemon in these scenarios (its native backend). Nix 2.26's
/// daemon keeps `sandbox = false`: it runs chrooted in the trixie root, where its probe of the
/// namespaces it needs (a new mount and PID namespace remounting `/proc`) fails, so with
/// `sandbox = true` it would silently fall back to building unsandboxed (`sandbox-fallback`)
/// anyway. The builders' results do not depend on the sandbox, so the transcripts still compare.
const SANDBOX: &str = "true";

/// The host's static busybox (Debian's `busybox-static`).
const HOST_BUSYBOX: &str = "/bin/busybox";

/// A scenario with the build settings of this file.
fn scenario(name: &str) -> Scenario {
    Scenario::new(name).conf("sandbox = false\n").under_test_conf(&format!("sandbox = {SANDBOX}\n"))
}

/// Writes `busybox-dir/bin/busybox` and `lib.nix` (a `mk` function making a busybox-built
/// derivation from a name and a shell script) among the inputs.
fn build_lib(s: &Session<'_>) {
    let busybox = std::fs::read(HOST_BUSYBOX)
        .unwrap_or_else(|e| panic!("{HOST_BUSYBOX}: {e} (apt-get install busybox-static; scripts/test-all.sh does)"));
    s.input_exec("build/busybox-dir/bin/busybox", &busybox);
    s.input(
        "build/lib.nix",
        br#"rec {
  busybox = "${./busybox-dir}/bin/busybox";
  # A derivation built by busybox's sh running `script`; other attributes pass through.
  mk = { name, script, ... }@attrs:
    derivation (removeAttrs attrs [ "script" ] // {
      inherit name;
      system = builtins.currentSystem;
      builder = busybox;
      args = [ "sh" "-c" script ];
    });
}
"#,
    );
}

/// Writes `build/<file>` (an expression that may `import ./lib.nix`) and returns its path.
fn expr(s: &Session<'_>, file: &str, text: &str) -> String {
    build_lib(s);
    s.input(&format!("build/{file}"), text.as_bytes())
}

/// `nix build` with the flags a client needs: Nix 2.8 is told about `nix-command` explicitly.
fn nix_build(s: &Session<'_>) -> Vec<String> {
    let mut args = vec!["nix".to_owned()];
    if s.client().kind == ClientKind::Nix28 {
        args.extend(["--extra-experimental-features".to_owned(), "nix-command".to_owned()]);
    }
    args.push("build".to_owned());
    args
}

/// `nix log` (with `nix-command` spelled out for Nix 2.8).
fn nix_log(s: &Session<'_>, installable: &str) -> Vec<String> {
    let mut args = nix_build(s);
    args.pop();
    // (No binary cache to ask: the log is in the store's log directory.)
    args.extend(["log", "--option", "substituters", "", installable].map(str::to_owned));
    args
}

/// Appends `extra` to `base`.
fn with(base: Vec<String>, extra: &[&str]) -> Vec<String> {
    base.into_iter().chain(extra.iter().map(|a| (*a).to_owned())).collect()
}

const SIMPLE: &str = r#"let lib = import ./lib.nix; in lib.mk {
  name = "simple";
  greeting = "hello from the builder";
  script = ''
    echo "building $name"
    echo "to stderr" >&2
    mkdir $out
    echo "$greeting" > $out/greeting
    ln -s greeting $out/link
    printf '#!/bin/sh\necho run\n' > $out/run
    chmod +x $out/run
  '';
}
"#;

#[test]
fn realise_and_result_links() {
    scenario("realise_and_result_links").run(|s| {
        let file = expr(s, "simple.nix", SIMPLE);
        let drv = s.cmd(["nix-instantiate", &file]).expect_ok().run().line();
        s.cmd(["nix-store", "--realise", "--dry-run", &drv]).expect_ok().run();
        let out = s.cmd(["nix-store", "--realise", &drv]).expect_ok().run().line();
        // Already valid: nothing is built the second time.
        s.cmd(["nix-store", "--realise", &drv]).expect_ok().run();
        s.cmd(["nix-store", "--verify-path", &out]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--deriver", &out]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--references", &out]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--hash", &out]).expect_ok().run();
        s.cmd(["nix-store", "--dump", &out]).binary().expect_ok().run();
        s.cmd(["nix", "path-info", "--json", &out]).json().expect_ok().run();
        // nix-build: `result` in the work directory, then `-o`.
        s.cmd(["nix-build", &file]).expect_ok().run();
        let link = s.work("named-link");
        s.cmd(["nix-build", &file, "-o", &link]).expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-roots"]).sorted().expect_ok().run();
        // (Its temporary root's name has the client's process id: no root listing after it.)
        s.cmd(["nix-build", "--no-out-link", &file]).expect_ok().run();
        // nix build: a fresh derivation (other name), printed, linked and not linked.
        let fresh = expr(s, "fresh.nix", &SIMPLE.replace("\"simple\"", "\"fresh\""));
        // (`--print-out-paths` came with Nix 2.9: Nix 2.8 reads the link instead.)
        let nix_link = s.work("nix-link");
        if s.client().kind == ClientKind::Nix226 {
            s.cmd(with(nix_build(s), &["-f", &fresh, "--print-out-paths", "--no-link"])).expect_ok().run();
            s.cmd(with(nix_build(s), &["-f", &fresh, "--print-out-paths", "-o", &nix_link])).expect_ok().run();
        } else {
            s.cmd(with(nix_build(s), &["-f", &fresh, "--no-link"])).expect_ok().run();
            s.cmd(with(nix_build(s), &["-f", &fresh, "-o", &nix_link])).expect_ok().run();
            s.cmd(["nix-store", "-q", "--outputs", &nix_link]).expect_ok().run();
        }
        s.cmd(with(nix_build(s), &["-f", &file, "--json", "--no-link"])).json().expect_ok().run();
        let work = s.work("");
        s.snapshot("work directory", &work);
    });
}

const MULTI: &str = r#"let lib = import ./lib.nix; in rec {
  dep = lib.mk {
    name = "dep";
    script = "mkdir $out; echo dependency > $out/file";
  };
  multi = lib.mk {
    name = "multi";
    outputs = [ "out" "dev" "lib" ];
    inherit dep;
    script = ''
      mkdir $out $dev $lib
      echo "main uses $lib and $dep" > $out/main
      echo "headers of $out" > $dev/header
      echo library > $lib/library
    '';
  };
  user = lib.mk {
    name = "user";
    script = "mkdir $out; echo ${multi.dev} > $out/uses-dev";
  };
}
"#;

#[test]
fn multiple_outputs() {
    scenario("multiple_outputs").run(|s| {
        let file = expr(s, "multi.nix", MULTI);
        let drv = s.cmd(["nix-instantiate", &file, "-A", "multi"]).expect_ok().run().line();
        // Only some outputs: `!` for nix-store, `^` for nix build.
        s.cmd(["nix-store", "--realise", &format!("{drv}!dev")]).expect_ok().run();
        let outputs = s.cmd(["nix-store", "-q", "--outputs", &drv]).expect_ok().run().lines();
        let mut validity = vec!["nix-store".to_owned(), "--check-validity".to_owned(), "--print-invalid".to_owned()];
        validity.extend(outputs.iter().cloned());
        s.cmd(&validity).expect_ok().run();
        // (Nix 2.8's `nix build` cannot pick outputs of a `.drv`: it builds them all.)
        let installable = match s.client().kind {
            ClientKind::Nix28 => drv.clone(),
            ClientKind::Nix226 => format!("{drv}^out,dev"),
        };
        s.cmd(with(nix_build(s), &[&installable, "--json", "--no-link"])).json().expect_ok().run();
        s.cmd(["nix-store", "--realise", &format!("{drv}!out,lib")]).expect_ok().run();
        s.cmd(["nix-store", "--realise", &format!("{drv}!nosuch")]).expect_fail().run();
        for output in &outputs {
            s.cmd(["nix-store", "-q", "--references", output]).expect_ok().run();
            s.cmd(["nix-store", "-q", "--deriver", output]).expect_ok().run();
        }
        // nix-build -A: one link per output (`result`, `result-dev`, `result-lib`).
        s.cmd(["nix-build", &file, "-A", "multi"]).expect_ok().run();
        s.cmd(["nix-build", &file, "-A", "multi.dev", "-o", "dev-only"]).expect_ok().run();
        s.cmd(["nix-build", &file, "-A", "user", "-o", "user"]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--requisites", &s.work("user")]).sorted().expect_ok().run();
        s.cmd(["nix-store", "-q", "--tree", &s.work("user")]).expect_ok().run();
        let work = s.work("");
        s.snapshot("work directory", &work);
    });
}

/// The SHA-256 of `bytes` in hex (a flat fixed output's `outputHash`).
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn fixed_output_derivations() {
    scenario("fixed_output_derivations").run(|s| {
        let right = sha256_hex(b"fixed contents\n");
        let wrong = sha256_hex(b"other contents\n");
        let text = format!(
            r#"let lib = import ./lib.nix;
  fixed = name: hash: script: lib.mk {{
    inherit name script;
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = hash;
  }};
in {{
  right = fixed "fixed" "{right}" "echo 'fixed contents' > $out";
  # Another builder, the same output: the same path, valid once the first is built.
  same = fixed "fixed" "{right}" "echo fetching; printf 'fixed contents\n' > $out";
  wrong = fixed "fixed-wrong" "{wrong}" "echo 'fixed contents' > $out";
  # A flat fixed output may not refer to store paths (checked before its hash).
  refers = fixed "fixed-refers" "{wrong}" "echo ${{lib.busybox}} > $out";
  user = lib.mk {{
    name = "fixed-user";
    script = "mkdir $out; cat ${{fixed "fixed" "{right}" "echo 'fixed contents' > $out"}} > $out/copy";
  }};
}}
"#
        );
        let file = expr(s, "fixed.nix", &text);
        let right_drv = s.cmd(["nix-instantiate", &file, "-A", "right"]).expect_ok().run().line();
        let same_drv = s.cmd(["nix-instantiate", &file, "-A", "same"]).expect_ok().run().line();
        s.cmd(["nix-store", "-q", "--outputs", &right_drv, &same_drv]).expect_ok().run();
        let out = s.cmd(["nix-store", "--realise", &right_drv]).expect_ok().run().line();
        s.cmd(["nix-store", "--realise", &same_drv]).expect_ok().run();
        s.cmd(["nix", "path-info", "--json", &out]).json().expect_ok().run();
        s.cmd(["nix-store", "-q", "--hash", &out]).expect_ok().run();
        // The wrong hash: Nix's "hash mismatch in fixed-output derivation", exit status 102.
        s.cmd(["nix-build", &file, "-A", "wrong"]).expect_fail().run();
        let wrong_drv = s.cmd(["nix-instantiate", &file, "-A", "wrong"]).expect_ok().run().line();
        s.cmd(["nix-store", "--realise", &wrong_drv]).expect_fail().run();
        s.cmd(with(nix_build(s), &["-f", &file, "wrong", "--no-link"])).expect_fail().run();
        s.cmd(["nix-build", &file, "-A", "refers"]).expect_fail().run();
        let wrong_out = s.cmd(["nix-store", "-q", "--outputs", &wrong_drv]).expect_ok().run().line();
        s.cmd(["nix-store", "--check-validity", &wrong_out]).expect_fail().run();
        s.cmd(["nix-build", &file, "-A", "user", "-o", "user"]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--references", &s.work("user")]).expect_ok().run();
    });
}

const FAILING: &str = r#"let lib = import ./lib.nix; in rec {
  fails = lib.mk {
    name = "fails";
    script = ''
      echo "line one"
      echo "line two on stderr" >&2
      mkdir $out
      exit 3
    '';
  };
  noOutput = lib.mk {
    name = "no-output";
    script = "echo 'forgot to write $out'";
  };
  dependent = lib.mk {
    name = "dependent";
    inherit fails;
    script = "mkdir $out";
  };
}
"#;

#[test]
fn failing_builds() {
    scenario("failing_builds").run(|s| {
        let file = expr(s, "failing.nix", FAILING);
        let drv = s.cmd(["nix-instantiate", &file, "-A", "fails"]).expect_ok().run().line();
        s.cmd(["nix-store", "--realise", &drv]).expect_fail().run();
        let out = s.cmd(["nix-store", "-q", "--outputs", &drv]).expect_ok().run().line();
        // The partial output is gone, the failed build is not cached.
        s.cmd(["nix-store", "--check-validity", &out]).expect_fail().run();
        s.cmd(["nix-build", &file, "-A", "fails"]).expect_fail().run();
        s.cmd(["nix-build", &file, "-A", "noOutput"]).expect_fail().run();
        s.cmd(["nix-build", &file, "-A", "dependent"]).expect_fail().run();
        // Several builds: Nix's order is its scheduler's, compared as sorted lines.
        s.cmd(["nix-build", "--keep-going", &file, "-A", "dependent", "-A", "noOutput"]).sorted_stderr().expect_fail().run();
        s.cmd(with(nix_build(s), &["-f", &file, "fails", "--no-link"])).expect_fail().run();
        // The log of a failed build is kept.
        s.cmd(["nix-store", "-l", &drv]).expect_ok().run();
    });
}

/// Fifty derivations: `node-i` depends on `node-(i/2)` and `node-(i/3)` (so most inputs are
/// shared), each output referring to its inputs; `top` depends on all of them.
const GRAPH: &str = r#"let
  lib = import ./lib.nix;
  node = i: lib.mk {
    name = "node-${toString i}";
    deps = if i == 0 then [ ] else [ (node (i / 2)) (node (i / 3)) ];
    script = ''
      mkdir $out
      echo "node $name" > $out/name
      for d in $deps; do echo $d >> $out/deps; cat $d/name >> $out/names; done
      echo "built $name"
    '';
  };
  nodes = builtins.genList node 50;
in lib.mk {
  name = "graph-top";
  inherit nodes;
  script = "mkdir $out; for n in $nodes; do cat $n/name; done > $out/all";
}
"#;

#[test]
fn derivation_graph() {
    scenario("derivation_graph").run(|s| {
        let file = expr(s, "graph.nix", GRAPH);
        let drv = s.cmd(["nix-instantiate", &file]).expect_ok().run().line();
        s.cmd(["nix-store", "--realise", "--dry-run", &drv]).expect_ok().run();
        // Nix builds in its scheduler's order (not fixed by the graph): sorted lines.
        let out = s.cmd(["nix-store", "--realise", &drv]).sorted_stderr().expect_ok().run().line();
        s.cmd(["nix-store", "-q", "--requisites", &out]).sorted().expect_ok().run();
        s.cmd(["nix-store", "-q", "--graph", &out]).sorted().expect_ok().run();
        s.cmd(["nix", "path-info", "--json", "--recursive", &out]).json().expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
        // Everything is valid now.
        s.cmd(["nix-build", &file, "-o", "graph"]).expect_ok().run();
        s.cmd(["nix-store", "--realise", "--dry-run", &drv]).expect_ok().run();
    });
}

#[test]
fn build_logs() {
    scenario("build_logs").run(|s| {
        let file = expr(s, "simple.nix", SIMPLE);
        let drv = s.cmd(["nix-instantiate", &file]).expect_ok().run().line();
        // No log before the build.
        s.cmd(["nix-store", "-l", &drv]).expect_fail().run();
        let out = s.cmd(["nix-store", "--realise", &drv]).expect_ok().run().line();
        s.cmd(["nix-store", "-l", &drv]).expect_ok().run();
        s.cmd(["nix-store", "--read-log", &out]).expect_ok().run();
        s.cmd(nix_log(s, &drv)).expect_ok().run();
        s.cmd(nix_log(s, &out)).expect_ok().run();
        let logs = s.env().path("log").to_string_lossy().into_owned();
        s.cmd(["sh", "-c", &format!("cd {logs} && find . -type f | sed 's/[^/]*-/HASH-/'")]).expect_ok().run();
    });
}
