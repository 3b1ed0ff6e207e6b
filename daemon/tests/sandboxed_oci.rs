//! Builds through casnix-daemon with `sandbox = true` and `sandbox-backend = oci` (runc
//! containers), driven by the real Nix 2.8 `nix-build`, with a static busybox as the
//! builders' shell. Needs root and runc (scripts/test-all.sh installs it).

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, Daemon};

/// Busybox as `/bin/sh` inside the sandbox (`sandbox-paths`), so the derivations need no inputs.
const CONF: &str = "sandbox = true\nsandbox-backend = oci\nsandbox-paths = /bin/sh=/bin/busybox\n";

fn nix_file(daemon: &Daemon) -> std::path::PathBuf {
    daemon.file(
        "t.nix",
        br#"
        let sh = script: { builder = "/bin/sh"; args = [ "-c" script ]; system = builtins.currentSystem; }; in
        rec {
          hello = derivation (sh "echo $(id -u):$(id -g) $(hostname) $PWD > $out; ls /etc > /build/etc; cat /build/etc >> $out; cut -d: -f1 /proc/net/dev | tail -n +3 >> $out; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status >> $out" // { name = "hello"; });
          dep = derivation (sh "cat ${hello} > $out; ls $NIX_STORE | wc -l >> $out" // { name = "dep"; });
          suid = derivation (sh "touch $out; chmod u+s $out" // { name = "suid"; });
          slow = derivation (sh "echo started; sleep 1000" // { name = "slow"; });
        }
        "#,
    )
}

/// No container is left in the daemon's runc state directory, no chroot in the store.
fn assert_nothing_left(daemon: &Daemon) {
    let runc_state = daemon.path("state/casnix/runc");
    let containers: Vec<_> = std::fs::read_dir(&runc_state).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(containers.is_empty(), "{containers:?}");
    let chroots: Vec<_> = std::fs::read_dir(daemon.path("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".chroot"))
        .collect();
    assert!(chroots.is_empty(), "{chroots:?}");
}

#[test]
fn builds_run_in_runc_containers() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "dep", "--no-out-link"]));
    let text = std::fs::read_to_string(&out).unwrap();
    // Nix's sandbox user, host name and build directory; Nix's /etc; only `lo`; no new
    // privileges, a seccomp filter; the input closure (`hello`) and the output are all the
    // store shows.
    assert_eq!(
        text,
        "1000:100 localhost /build\ngroup\nhosts\npasswd\n    lo\nNoNewPrivs:\t1\nSeccomp:\t2\n2\n",
        "{}",
        daemon.daemon_log()
    );
    assert_nothing_left(&daemon);
}

#[test]
fn setuid_files_are_refused_and_timeouts_kill_the_container() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "suid", "--no-out-link"]));
    assert!(err.contains("Operation not permitted"), "{err}");
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "slow", "--no-out-link", "--timeout", "2"]));
    assert!(err.contains("timed out after 2 seconds"), "{err}");
    assert_nothing_left(&daemon);
}

#[test]
fn root_builds_as_a_free_build_user() {
    let (uids, _build_users) = common::ensure_build_users();
    let daemon = Daemon::start(&format!("{CONF}build-users-group = {}\n", common::BUILD_GROUP));
    let file = daemon.file(
        "users.nix",
        br#"derivation { name = "who"; system = builtins.currentSystem; builder = "/bin/sh";
             args = [ "-c" "id -u > $out; cat /proc/self/uid_map >> $out; stat -c %a:%u:%g /build $NIX_STORE >> $out" ]; }"#,
    );
    let out = ok(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1000", "{text}");
    // runc's setup needs a container root: its own ID, then the build user as 1000.
    let root_map: Vec<u32> = lines[1].split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(root_map, [0, sandbox::oci::bundle::CONTAINER_ROOT_HOST_ID, 1], "{text}");
    let map: Vec<u32> = lines[2].split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!((map[0], map[2]), (1000, 1));
    assert!(uids.contains(&map[1]), "{text}: not one of {uids:?}");
    // The store directory inside is root's (unmapped: the overflow id) and the build group's.
    assert_eq!(&lines[3..], ["700:1000:100", "1775:65534:100"], "{text}");
    assert_nothing_left(&daemon);
}
