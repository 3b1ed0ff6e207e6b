//! `--check` of content-addressed (floating) derivations through casnix-daemon, driven by the
//! real Nix 2.8: the derivation is built again and compared with the outputs its realisations
//! name.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ok, output, Daemon};

const CONF: &str = "experimental-features = nix-command ca-derivations\n";

fn nix_file(daemon: &Daemon) -> std::path::PathBuf {
    daemon.file(
        "ca.nix",
        br#"
        let ca = name: script: derivation {
          inherit name;
          system = builtins.currentSystem;
          builder = "/bin/sh";
          args = [ "-c" script ];
          PATH = "/usr/bin:/bin";
          __contentAddressed = true;
          outputHashMode = "recursive";
          outputHashAlgo = "sha256";
        }; in {
          same = ca "same" "mkdir $out; echo same > $out/file; ln -s $out/file $out/self";
          random = ca "random" "cat /proc/sys/kernel/random/uuid > $out";
        }
        "#,
    )
}

fn nix_build(daemon: &Daemon, file: &std::path::Path, attr: &str, check: bool) -> std::process::Command {
    let mut cmd = daemon.nix("nix-build");
    cmd.arg(file).args(["-A", attr, "--no-out-link", "--extra-experimental-features", "ca-derivations"]);
    if check {
        cmd.arg("--check");
    }
    cmd
}

#[test]
fn deterministic_floating_outputs_pass_the_check() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let out = ok(&mut nix_build(&daemon, &file, "same", false));
    let checked = ok(&mut nix_build(&daemon, &file, "same", true));
    assert_eq!(checked, out, "{}", daemon.daemon_log());
}

#[test]
fn nondeterministic_floating_outputs_fail_the_check() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let out = ok(&mut nix_build(&daemon, &file, "random", false));
    let result = output(&mut nix_build(&daemon, &file, "random", true));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{err}");
    assert!(err.contains("may not be deterministic"), "{err}");
    // The realised output stays as it was.
    assert!(std::path::Path::new(&out).exists());
}
