//! casnix-daemon's life: version, signals, `--stdio`, systemd socket activation, a store
//! deleted under it, and the trust rules for unprivileged users, with the real Nix 2.8 clients
//! and raw protocol clients.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fails, log_shows, ok, output, require, Daemon, TestRoot, DAEMON};
use rustix::process::Signal;
use tokio::io::AsyncWriteExt;
use worker_protocol::connection::ClientConnection;
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};
use worker_protocol::types::TrustedFlag;

const GENEROUS: Duration = Duration::from_secs(60);

#[test]
fn version_has_nix_form() {
    let out = Command::new(DAEMON).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next().unwrap();
    let version = line.strip_prefix("casnix-daemon (Nix) 2.26.3-casnix.").unwrap_or_else(|| panic!("{line}"));
    assert!(!version.is_empty() && !version.contains(' '), "{line}");
}

/// The "Max open files" soft and hard limits of process `pid`, from `/proc` (`None` for
/// "unlimited").
fn open_files_limits(pid: u32) -> (Option<u64>, Option<u64>) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    (fields[0].parse().ok(), fields[1].parse().ok())
}

#[test]
fn a_low_soft_descriptor_limit_is_raised_to_the_hard_one() {
    require("prlimit");
    let (_, hard) = open_files_limits(std::process::id());
    if hard.is_some_and(|h| h <= 1024) {
        eprintln!("hard descriptor limit {hard:?}: nothing to raise; skipped");
        return;
    }
    let root = TestRoot::new("");
    let child = root.daemon_command_under(&["prlimit", "--nofile=1024:"]).spawn().unwrap();
    let daemon = Daemon::adopt(root, child);
    let most = store::descriptors::DESCRIPTOR_LIMIT;
    let expected = hard.map_or(most, |h| h.min(most));
    assert_eq!(open_files_limits(daemon.pid()), (Some(expected), hard), "{}", daemon.root.daemon_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_reports_the_version_and_root_is_trusted() {
    let daemon = Daemon::start("");
    let conn = daemon.connect().await;
    let printed = String::from_utf8(Command::new(DAEMON).arg("--version").output().unwrap().stdout).unwrap();
    assert_eq!(conn.daemon_nix_version(), printed.split_whitespace().nth(2));
    assert_eq!(conn.remote_trusts_us(), Some(TrustedFlag::Trusted));
    // The real client is served too.
    ok(daemon.nix("nix").args(["store", "ping"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_closes_idle_clients_and_exits_0() {
    let mut daemon = Daemon::start("");
    let mut idle = daemon.connect().await;
    let mut busy = daemon.connect().await;
    // A slow upload: its first part is sent, then the daemon is told to stop, then the rest.
    let (mut feeder, mut source) = tokio::io::duplex(1 << 16);
    let upload = tokio::spawn(async move {
        let method = CaMethodAlgo { method: IngestionMethod::Flat, algo: nix_formats::hash::Algorithm::Sha256 };
        let info = busy.add_to_store("slow", method, &BTreeSet::new(), false, &mut source).await;
        (info, busy)
    });
    let first = vec![7u8; 6 << 20];
    // Written only once the daemon has taken most of it: the request is being served.
    feeder.write_all(&first).await.unwrap();
    daemon.signal(Signal::TERM);
    assert!(log_shows(&daemon, "stopping", GENEROUS).await, "{}", daemon.daemon_log());

    // The idle client is let go; new clients are not accepted.
    let closed = idle.is_valid_path(&daemon.store_dir().parse(&format!("{}/{}-x", daemon.store(), "0".repeat(32))).unwrap()).await;
    assert!(closed.is_err(), "an idle connection should be closed on SIGTERM: {closed:?}");
    assert!(ClientConnection::connect_unix(daemon.socket(), &daemon.client_config()).await.is_err());

    feeder.write_all(&[8u8; 1 << 20]).await.unwrap();
    drop(feeder);
    let (info, busy) = upload.await.unwrap();
    let info = info.unwrap_or_else(|e| panic!("the request in flight failed: {e}\n{}", daemon.daemon_log()));
    assert!(daemon.store_dir().print(&info.path).starts_with(&daemon.store()));
    assert!(info.nar_size > 7 << 20);
    drop(busy);

    let status = tokio::task::block_in_place(|| daemon.wait_exit(GENEROUS));
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{}", daemon.daemon_log());
    // What was added is in the store, as Nix sees it.
    let local = ok(Command::new("nix-store")
        .env("NIX_REMOTE", "local")
        .envs([
            ("NIX_STORE_DIR", daemon.path("store")),
            ("NIX_STATE_DIR", daemon.path("state")),
            ("NIX_LOG_DIR", daemon.path("log")),
            ("NIX_CONF_DIR", daemon.path("conf")),
        ])
        .args(["--check-validity", &daemon.store_dir().print(&info.path)]));
    assert_eq!(local, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_nix_conf_for_new_connections() {
    let daemon = Daemon::start("");
    let mut before = daemon.connect().await;
    assert_eq!(before.remote_trusts_us(), Some(TrustedFlag::Trusted));

    daemon.write_conf("trusted-users = nobody\n");
    daemon.signal(Signal::HUP);
    assert!(log_shows(&daemon, "reloaded nix.conf", GENEROUS).await, "{}", daemon.daemon_log());
    let after = daemon.connect().await;
    assert_eq!(after.remote_trusts_us(), Some(TrustedFlag::NotTrusted));
    // The older connection goes on as it began.
    assert!(before.query_all_valid_paths().await.unwrap().is_empty());

    daemon.write_conf("trusted-users = root\n");
    daemon.signal(Signal::HUP);
    assert!(
        common::eventually(GENEROUS, || daemon.daemon_log().matches("reloaded nix.conf").count() == 2),
        "{}",
        daemon.daemon_log()
    );
    assert_eq!(daemon.connect().await.remote_trusts_us(), Some(TrustedFlag::Trusted));
}

/// Runs one `--stdio` session with `args` and returns the trust the daemon announced.
async fn stdio_session(root: &TestRoot, args: &[&str]) -> Option<TrustedFlag> {
    let mut cmd: tokio::process::Command = root.daemon_command().into();
    cmd.arg("--stdio").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut conn = ClientConnection::handshake(stdout, stdin, &root.client_config()).await.unwrap();
    let path = conn.add_text_to_store("stdio", b"over a pipe", &BTreeSet::new()).await.unwrap();
    assert!(conn.is_valid_path(&path).await.unwrap());
    assert!(fs::read(root.store_dir().print(&path)).unwrap() == b"over a pipe");
    let trust = conn.remote_trusts_us();
    drop(conn);
    let status = tokio::time::timeout(GENEROUS, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}: {}", root.daemon_log());
    trust
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_one_session_and_honours_force_untrusted() {
    let root = TestRoot::new("");
    assert_eq!(stdio_session(&root, &[]).await, Some(TrustedFlag::Trusted));
    assert_eq!(stdio_session(&root, &["--force-untrusted"]).await, Some(TrustedFlag::NotTrusted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_socket_activation() {
    require("systemd-socket-activate");
    let root = TestRoot::new("");
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("-l").arg(root.socket());
    // systemd-socket-activate passes only the environment it is told to.
    let own_socket = root.path("own-socket");
    for (name, value) in [
        ("NIX_STORE_DIR", root.path("store")),
        ("NIX_STATE_DIR", root.path("state")),
        ("NIX_LOG_DIR", root.path("log")),
        ("NIX_CONF_DIR", root.path("conf")),
        ("NIX_DAEMON_SOCKET_PATH", own_socket.clone()),
    ] {
        cmd.arg("-E").arg(format!("{name}={}", value.display()));
    }
    cmd.args(["-E", "RUST_LOG=daemon=debug,info", "-E", "NO_COLOR=1", "-E", "NIX_REMOTE=local", DAEMON]);
    let log = fs::File::create(root.path("daemon.log")).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(&mut child);
    assert!(common::eventually(GENEROUS, || root.socket().exists()), "no socket: {}", root.daemon_log());

    let mut conn = root.connect().await;
    let path = conn.add_text_to_store("activated", b"by systemd", &BTreeSet::new()).await.unwrap();
    assert!(conn.query_path_info(&path).await.unwrap().is_some());
    drop(conn);
    // A second connection is served by the same daemon, on the same socket.
    let printed = ok(root.nix("nix-store").args(["-q", "--hash", &root.store_dir().print(&path)]));
    assert!(printed.starts_with("sha256:"), "{printed}");
    assert!(root.daemon_log().contains("using the socket passed by systemd"), "{}", root.daemon_log());
    assert!(!own_socket.exists(), "the daemon should not bind a socket of its own");
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_can_be_deleted_and_recreated_between_connections() {
    let daemon = Daemon::start("");
    let mut conn = daemon.connect().await;
    let path = conn.add_text_to_store("first", b"first life", &BTreeSet::new()).await.unwrap();
    drop(conn);
    // As Nix's test suite does between tests.
    ok(Command::new("chmod").arg("-R").arg("u+w").arg(daemon.path("store")));
    for sub in ["store", "state"] {
        fs::remove_dir_all(daemon.path(sub)).unwrap();
        fs::create_dir(daemon.path(sub)).unwrap();
    }
    let mut conn = daemon.connect().await;
    assert!(!conn.is_valid_path(&path).await.unwrap());
    assert!(conn.query_all_valid_paths().await.unwrap().is_empty());
    let again = conn.add_text_to_store("first", b"first life", &BTreeSet::new()).await.unwrap();
    assert_eq!(again, path);
    let file = daemon.file("second", b"second life");
    let added = ok(daemon.nix("nix-store").arg("--add").arg(&file));
    assert_eq!(ok(daemon.nix("nix-store").args(["--check-validity", &added])), "");
    assert_eq!(fs::read(&added).unwrap(), b"second life");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_users_get_nix_refusals() {
    let daemon = Daemon::start("");
    // Root prepares an export of a path, then deletes the path.
    let file = daemon.file("exported", b"to be imported");
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let path = ok(daemon.nix("nix-store").arg("--add").arg(&file));
    let export = output(daemon.nix("nix-store").args(["--export", &path]));
    assert!(export.status.success());
    fs::write(daemon.path("export.nar"), &export.stdout).unwrap();
    ok(daemon.nix("nix-store").args(["--delete", &path]));

    // Adding is allowed.
    let added = ok(daemon.nix_untrusted("nix-store").arg("--add").arg(&file));
    assert_eq!(added, path);
    ok(daemon.nix("nix-store").args(["--delete", &path]));

    // Importing unsigned paths and repairing are not.
    let mut import = daemon.nix_untrusted("nix-store");
    import.arg("--import").stdin(fs::File::open(daemon.path("export.nar")).unwrap());
    let refused = fails(&mut import);
    assert!(refused.contains("lacks a signature by a trusted key"), "{refused}");
    assert!(!daemon.path("store").join(path.rsplit('/').next().unwrap()).exists());
    let refused = fails(daemon.nix_untrusted("nix-store").args(["--verify", "--check-contents", "--repair"]));
    assert!(refused.contains("you are not privileged to repair paths"), "{refused}");
    // Root may do both.
    let mut import = daemon.nix("nix-store");
    import.arg("--import").stdin(fs::File::open(daemon.path("export.nar")).unwrap());
    assert_eq!(ok(&mut import), path);
    ok(daemon.nix("nix-store").args(["--verify", "--check-contents", "--repair"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_users_keep_others_out() {
    let daemon = Daemon::start("allowed-users = root\n");
    let file = daemon.file("kept-out", b"no entry");
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let refused = fails(daemon.nix_untrusted("nix-store").arg("--add").arg(&file));
    assert!(!refused.contains("panicked"), "{refused}");
    assert!(
        log_shows(&daemon, &format!("user '{}' is not allowed", common::UNTRUSTED_USER), GENEROUS).await,
        "{}",
        daemon.daemon_log()
    );
    // Root still gets in.
    ok(daemon.nix("nix-store").arg("--add").arg(&file));
}
