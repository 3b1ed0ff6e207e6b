//! Builds through casnix-daemon with `sandbox = true` (the `native` backend, the daemon's own
//! executable as its helper), driven by the real Nix 2.8 `nix-build`, with a static busybox
//! as the builders' shell.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, Daemon};

/// Busybox as `/bin/sh` inside the sandbox (`sandbox-paths`), so the derivations need no inputs.
const CONF: &str = "sandbox = true\nsandbox-paths = /bin/sh=/bin/busybox\n";

fn nix_file(daemon: &Daemon) -> std::path::PathBuf {
    daemon.file(
        "t.nix",
        br#"
        let sh = script: { builder = "/bin/sh"; args = [ "-c" script ]; system = builtins.currentSystem; }; in
        rec {
          hello = derivation (sh "echo $(id -u):$(id -g) $(hostname) $PWD > $out; ls /etc > /build/etc; cat /build/etc >> $out; cut -d: -f1 /proc/net/dev | tail -n +3 >> $out" // { name = "hello"; });
          dep = derivation (sh "cat ${hello} > $out; ls $NIX_STORE | wc -l >> $out" // { name = "dep"; });
          suid = derivation (sh "touch $out; chmod u+s $out" // { name = "suid"; });
          nochroot = derivation (sh ": > $out" // { name = "nochroot"; __noChroot = true; });
        }
        "#,
    )
}

#[test]
fn builds_run_in_the_native_sandbox() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let out = ok(daemon.nix("nix-build").arg(&file).args(["-A", "dep", "--no-out-link"]));
    let text = std::fs::read_to_string(&out).unwrap();
    // Nix's sandbox user, host name and build directory; Nix's /etc; only `lo`; the input
    // closure (`hello`) and the output are all the store shows.
    assert_eq!(text, "1000:100 localhost /build\ngroup\nhosts\npasswd\n    lo\n2\n", "{}", daemon.daemon_log());
    assert!(!std::fs::read_dir(daemon.path("store")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".chroot")));
}

#[test]
fn setuid_files_and_no_chroot_are_refused() {
    let daemon = Daemon::start(CONF);
    let file = nix_file(&daemon);
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "suid", "--no-out-link"]));
    assert!(err.contains("Operation not permitted"), "{err}");
    let err = fails(daemon.nix("nix-build").arg(&file).args(["-A", "nochroot", "--no-out-link"]));
    assert!(err.contains("has '__noChroot' set, but that's not allowed when 'sandbox' is 'true'"), "{err}");
    // `relaxed` lets it run on the host.
    let relaxed = Daemon::start(&CONF.replace("sandbox = true", "sandbox = relaxed"));
    let file = nix_file(&relaxed);
    let out = ok(relaxed.nix("nix-build").arg(&file).args(["-A", "nochroot", "--no-out-link"]));
    assert!(std::path::Path::new(&out).exists());
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
    let map: Vec<u32> = lines[1].split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!((map[0], map[2]), (1000, 1));
    assert!(uids.contains(&map[1]), "{text}: not one of {uids:?}");
    // The store directory inside is root's (unmapped: the overflow id) and the build group's.
    assert_eq!(&lines[2..], ["700:1000:100", "1775:65534:100"], "{text}");
    assert!(daemon.path("state/userpool").join(map[1].to_string()).exists());
}

#[test]
fn root_builds_unsandboxed_as_a_free_build_user() {
    use std::os::unix::fs::MetadataExt;
    let (uids, _build_users) = common::ensure_build_users();
    let daemon = Daemon::start(&format!("sandbox = false\nbuild-users-group = {}\n", common::BUILD_GROUP));
    let file = daemon.file(
        "users.nix",
        br#"derivation { name = "who"; system = builtins.currentSystem; builder = "/bin/sh";
             args = [ "-c" "/bin/busybox id -u > $out; /bin/busybox id -G >> $out; /bin/busybox stat -c %a:%u $NIX_BUILD_TOP >> $out" ]; }"#,
    );
    let out = ok(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    let text = std::fs::read_to_string(out.trim()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let uid: u32 = lines[0].parse().unwrap();
    assert!(uids.contains(&uid), "{text}: not one of {uids:?}");
    // Only the build group: the daemon's supplementary groups are gone.
    assert_eq!(lines[1].split_whitespace().count(), 1, "{text}");
    assert_eq!(lines[2], format!("700:{uid}"), "{text}");
    let meta = std::fs::symlink_metadata(out.trim()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o444), "{text}");
}

#[test]
fn a_diverted_store_builds_in_the_sandbox_even_with_sandbox_false() {
    // As Nix: a store whose files live elsewhere than its store directory says (`real=`, or a
    // `local?root=…` store) can only build where that directory is mounted, in a sandbox.
    let root = common::TestRoot::new("sandbox = false\nsandbox-paths = /bin/sh=/bin/busybox\n");
    let real = root.path("real");
    std::fs::create_dir_all(&real).unwrap();
    let store_arg = format!("local?real={}", real.display());
    let daemon = Daemon::start_in(root, &["--store", &store_arg]);
    let file = daemon.file(
        "diverted.nix",
        br#"derivation { name = "diverted"; system = builtins.currentSystem; builder = "/bin/sh";
             args = [ "-c" "echo $(hostname) > $out" ]; }"#,
    );
    let out = ok(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    let base = std::path::Path::new(out.trim()).file_name().unwrap().to_owned();
    assert!(!std::path::Path::new(out.trim()).exists(), "the output is only at its real place");
    let text = std::fs::read_to_string(real.join(base)).unwrap();
    assert_eq!(text, "localhost\n", "{}", daemon.daemon_log());
}
