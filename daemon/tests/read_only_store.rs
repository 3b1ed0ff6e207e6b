//! A store on a read-only mount, as NixOS mounts `/nix/store`: casnix-daemon (as root) remounts
//! it writable in a mount namespace of its own, as Nix does, and serves adds; elsewhere the mount
//! stays as it was.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok, require, TestRoot, DAEMON};

/// Makes the store a read-only bind mount (in the namespace `unshare` made), checks that it is,
/// then becomes the daemon.
const READ_ONLY_STORE: &str = r#"
store=$1; shift
mount --bind "$store" "$store" && mount -o remount,ro,bind "$store" || exit 97
if touch "$store/.probe" 2>/dev/null; then echo "the store mount is not read-only" >&2; exit 98; fi
exec "$@"
"#;

#[test]
fn a_read_only_store_mount_is_remounted_writable_for_the_daemon() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    require("unshare");
    let root = TestRoot::new("");
    // The daemon's own command (environment, log), started through unshare and the script.
    let daemon = root.daemon_command();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", READ_ONLY_STORE, "sh", &root.store(), DAEMON]);
    for (name, value) in daemon.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let log = fs::OpenOptions::new().append(true).open(root.path("daemon.log")).unwrap();
    let mut child = cmd.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(root.socket()).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("casnix-daemon exited ({status}) on a read-only store:\n{}", root.daemon_log());
        }
        assert!(Instant::now() < deadline, "casnix-daemon does not listen:\n{}", root.daemon_log());
        std::thread::sleep(Duration::from_millis(20));
    }

    let input = root.path("home/input.txt");
    fs::write(&input, "added to a read-only store\n").unwrap();
    let added = ok(root.nix("nix-store").arg("--add").arg(&input));
    let path = added.trim();
    assert!(path.starts_with(&root.store()), "{added}");
    assert_eq!(fs::read_to_string(path).unwrap(), "added to a read-only store\n");
    let log = root.daemon_log();
    assert!(log.contains("remounted writable for the daemon"), "{log}");

    child.kill().unwrap();
    child.wait().unwrap();
}
