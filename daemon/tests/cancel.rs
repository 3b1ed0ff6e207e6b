//! Without `keep-going`, a failed build ends its request: the request's other builders still
//! running are killed (as Nix 2.26's worker drops its top goals and their builders), with the
//! `none`, `native` and `oci` backends, driven by the real Nix 2.8 `nix-build -j2`.
//!
//! `long` runs for a minute with a marker in its environment; `fail` (always on the host, so it
//! can look) waits until a process with that marker exists, notes that it saw it, and fails.
//! When the client has its answer, no process carries the marker and `long` has no output.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, Daemon};

/// The derivations, built by busybox's shell.
fn nix_file(daemon: &Daemon, marker: &str) -> std::path::PathBuf {
    let seen = daemon.path("seen");
    let text = format!(
        r#"
        let drv = name: script: attrs: derivation ({{ inherit name; builder = "/bin/busybox"; system = builtins.currentSystem; args = [ "sh" "-c" script ]; }} // attrs); in
        {{
          long = drv "long" "echo long started; sleep 60; echo done > $out" {{ longMarker = "{marker}"; }};
          fail = drv "fail" ''
            i=0
            until /bin/busybox grep -qs "longMarker=$want" /proc/[0-9]*/environ; do
              i=$((i + 1)); [ $i -gt 200 ] && exit 4
              /bin/busybox sleep 0.05
            done
            /bin/busybox touch {seen}
            exit 3
          '' {{ want = "{marker}"; __noChroot = true; }};
        }}
        "#,
        seen = seen.display()
    );
    daemon.file("cancel.nix", text.as_bytes())
}

/// Processes whose environment holds `longMarker=<marker>`.
fn marked_processes(marker: &str) -> Vec<String> {
    let needle = format!("longMarker={marker}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{name}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

fn the_failure_kills_the_other_builder(conf: &str) {
    let daemon = Daemon::start(conf);
    let marker = daemon.path("").file_name().unwrap().to_string_lossy().into_owned();
    let file = nix_file(&daemon, &marker);
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "long", "-A", "fail", "--no-out-link", "-j", "2"]));
    // Nix 2.26's daemon answers the same: the failure, then both goals failed.
    assert!(err.contains("failed with exit code 3"), "{err}\n{}", daemon.daemon_log());
    let summary = err.lines().find(|l| l.starts_with("error: build of ")).unwrap_or_default();
    assert!(summary.contains("-fail.drv'") && summary.contains("-long.drv'"), "{err}");
    assert!(daemon.path("seen").exists(), "'fail' never saw 'long' running: {err}");
    let running = marked_processes(&marker);
    assert!(running.is_empty(), "still running after the request ended: {running:?}");
    let long = ok(daemon.nix("nix-instantiate").arg(&file).args(["-A", "long"]));
    let long_out = ok(daemon.nix("nix-store").args(["-q", "--outputs", &long]));
    assert!(!std::path::Path::new(&long_out).exists(), "'long' ran to completion: {err}");
    // The daemon serves on, and the next request builds `long` afresh (not cancelled).
    let conf_fast = std::fs::read_to_string(&file).unwrap().replace("sleep 60", "sleep 0");
    std::fs::write(&file, conf_fast).unwrap();
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "long", "--no-out-link"]));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "done\n");
}

#[test]
fn without_keep_going_a_failure_kills_the_unsandboxed_builder() {
    the_failure_kills_the_other_builder("max-jobs = 2\nsandbox = false\n");
}

#[test]
fn without_keep_going_a_failure_kills_the_sandboxed_builder() {
    // `long` in the native sandbox (with busybox), `fail` on the host (`relaxed`).
    the_failure_kills_the_other_builder("max-jobs = 2\nsandbox = relaxed\nsandbox-paths = /bin/busybox\n");
}

#[test]
fn without_keep_going_a_failure_kills_the_container() {
    common::require("runc");
    the_failure_kills_the_other_builder("max-jobs = 2\nsandbox = relaxed\nsandbox-backend = oci\nsandbox-paths = /bin/busybox\n");
}
