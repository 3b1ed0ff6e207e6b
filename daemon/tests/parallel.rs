//! `max-jobs` through casnix-daemon, driven by the real Nix 2.8 `nix-build`: two derivations
//! that each wait (at most a few seconds, so nothing hangs) for a flag file the other creates
//! finish only when they run at the same time.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, Daemon};

/// `left` and `right` each create their flag, then wait up to 5 s for the other's; `both`
/// depends on the two. `cores` writes `NIX_BUILD_CORES`; `broken` fails at once.
fn nix_file(daemon: &Daemon) -> std::path::PathBuf {
    let flags = daemon.path("flags");
    std::fs::create_dir_all(&flags).unwrap();
    let text = format!(
        r#"
        let
          sh = name: script: derivation {{ inherit name; system = builtins.currentSystem; builder = "/bin/busybox"; args = [ "sh" "-c" script ]; }};
          meet = me: other: sh me ''
            touch {flags}/${{me}}
            i=0
            while [ ! -e {flags}/${{other}} ]; do
              i=$((i + 1)); [ $i -gt 50 ] && {{ echo "${{me}} gave up waiting for ${{other}}"; exit 1; }}
              sleep 0.1
            done
            echo ${{me}} > $out
          '';
        in rec {{
          left = meet "left" "right";
          right = meet "right" "left";
          both = sh "both" "cat ${{left}} ${{right}} > $out";
          cores = sh "cores" "echo $NIX_BUILD_CORES > $out";
          broken = sh "broken" "exit 3";
        }}
        "#,
        flags = flags.display()
    );
    daemon.file("meet.nix", text.as_bytes())
}

fn clear_flags(daemon: &Daemon) {
    for entry in std::fs::read_dir(daemon.path("flags")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
}

#[test]
fn independent_inputs_build_at_the_same_time() {
    let daemon = Daemon::start("max-jobs = 2\n");
    let file = nix_file(&daemon);
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "both", "--no-out-link", "-j", "2"]));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "left\nright\n", "{}", daemon.daemon_log());
}

#[test]
fn one_job_builds_one_at_a_time_and_fails_cleanly() {
    let daemon = Daemon::start("max-jobs = 2\n");
    let file = nix_file(&daemon);
    // The client's max-jobs limits its request: the first input waits for the second in vain.
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "both", "--no-out-link", "-j", "1"]));
    assert!(err.contains("gave up waiting"), "{err}");
    assert!(err.contains("1 dependencies of derivation"), "{err}");
    // The daemon is still usable, and with two jobs the same graph builds.
    clear_flags(&daemon);
    ok(daemon.nix("nix-build").arg(&file).args(["-A", "both", "--no-out-link", "-j", "2"]));
}

#[test]
fn requested_targets_build_in_parallel() {
    let daemon = Daemon::start("max-jobs = 2\n");
    let file = nix_file(&daemon);
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "left", "-A", "right", "--no-out-link", "-j", "2"]));
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn the_clients_max_jobs_rules_and_casnix_can_cap_all_clients() {
    // As Nix's daemon: the client's max-jobs wins over the daemon's.
    let daemon = Daemon::start("max-jobs = 1\n");
    let file = nix_file(&daemon);
    ok(daemon.nix("nix-build").arg(&file).args(["-A", "both", "--no-out-link", "-j", "2"]));
    // casnix's cap on all clients together: a client asking for two still gets one.
    let daemon = Daemon::start("casnix-max-jobs-total = 1\n");
    let file = nix_file(&daemon);
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "both", "--no-out-link", "-j", "2"]));
    assert!(err.contains("gave up waiting"), "{err}");
    // Two clients with one job each, one derivation each: without a cap they meet.
    let daemon = Daemon::start("max-jobs = 1\n");
    let file = nix_file(&daemon);
    let spawn = |attr: &str| daemon.nix("nix-build").arg(&file).args(["-A", attr, "--no-out-link", "-j", "1"]).output().unwrap();
    let (left, right) = std::thread::scope(|s| {
        let left = s.spawn(|| spawn("left"));
        let right = s.spawn(|| spawn("right"));
        (left.join().unwrap(), right.join().unwrap())
    });
    assert!(left.status.success(), "{}", String::from_utf8_lossy(&left.stderr));
    assert!(right.status.success(), "{}", String::from_utf8_lossy(&right.stderr));
}

#[test]
fn keep_going_builds_the_other_inputs_and_reports_every_failure() {
    let daemon = Daemon::start("max-jobs = 2\n");
    let file = daemon.file(
        "fail.nix",
        br#"
        let sh = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/busybox"; args = [ "sh" "-c" script ]; }; in
        rec {
          bad1 = sh "bad1" "exit 3";
          bad2 = sh "bad2" "sleep 1; exit 4";
          good = sh "good" "sleep 1; echo good > $out";
          top = sh "top" "cat ${bad1} ${bad2} ${good} > $out";
        }
        "#,
    );
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "top", "--no-out-link", "-j", "2", "--keep-going"]));
    assert!(err.contains("exit code 3") && err.contains("exit code 4"), "{err}");
    assert!(err.contains("2 dependencies of derivation"), "{err}");
    let good = ok(daemon.nix("nix-instantiate").arg(&file).args(["-A", "good"]));
    let good_out = ok(daemon.nix("nix-store").args(["-q", "--outputs", &good]));
    assert!(std::path::Path::new(&good_out).exists(), "{err}");
}

#[test]
fn cores_reach_the_builder_and_zero_jobs_build_nothing() {
    let daemon = Daemon::start("max-jobs = 2\n");
    let file = nix_file(&daemon);
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "cores", "--no-out-link", "--cores", "3"]));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "3\n");
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "broken", "--no-out-link", "-j", "0"]));
    assert!(err.contains("Unable to start any build;"), "{err}");
    assert!(err.contains("either increase '--max-jobs' or enable remote builds."), "{err}");
}
