//! The sandbox properties every sandboxing backend must have (issue 6's acceptance), one
//! function each, taking the backend under test. A [`Fixture`] is a fake store directory under
//! a temporary directory (logically `/nix/store`) holding a static busybox as an input path.
//!
//! Used by `native.rs` (and meant for the `oci` backend's suite too).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use nix_formats::derivation::Derivation;
use sandbox::{Backend, BuildOutcome, BuildRequest};

/// The logical store directory the builders see.
pub const STORE_DIR: &str = "/nix/store";
/// The busybox input path's base name.
pub const BUSYBOX: &str = "0bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-busybox";
/// A store path that is in the store but in no build's input closure.
pub const OTHER: &str = "0ccccccccccccccccccccccccccccccc-secret";
/// Applets linked in busybox's `bin`.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "chmod", "ls", "id", "nc", "mkdir", "touch", "stat", "sleep", "test", "grep", "printf", "rm",
    "wc", "hostname", "cut", "tr", "head", "tail", "true", "false", "env",
];

/// A fake store (`<tmp>/store`, logically [`STORE_DIR`]) with busybox in it.
pub struct Fixture {
    /// Holds everything.
    pub tmp: tempfile::TempDir,
    /// The real store directory.
    pub store: PathBuf,
    /// Where build directories go.
    pub builds: PathBuf,
}

impl Fixture {
    /// Creates the store, busybox's path and [`OTHER`].
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let bin = store.join(BUSYBOX).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::create_dir_all(store.join(OTHER)).unwrap();
        std::fs::write(store.join(OTHER).join("data"), "secret").unwrap();
        let builds = tmp.path().join("builds");
        std::fs::create_dir_all(&builds).unwrap();
        // The fixture lives in a 0700 temporary directory; the sandbox's user must get through.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { tmp, store, builds }
    }

    /// A request running `script` with busybox's `sh`, its output `out` named `name`.
    pub fn request(&self, name: &str, script: &str, fixed_output: bool) -> BuildRequest {
        let out_base = format!("{}-{name}", hash_for(name));
        let busybox_inside = format!("{STORE_DIR}/{BUSYBOX}");
        let env: BTreeMap<Vec<u8>, Vec<u8>> = [
            ("PATH".to_owned(), format!("{busybox_inside}/bin")),
            ("out".to_owned(), format!("{STORE_DIR}/{out_base}")),
            ("name".to_owned(), name.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect();
        BuildRequest {
            drv_base_name: format!("{}-{name}.drv", hash_for(&format!("{name}.drv"))),
            derivation: Derivation {
                name: name.to_owned(),
                outputs: Default::default(),
                input_drvs: Default::default(),
                input_srcs: Default::default(),
                system: b"x86_64-linux".to_vec(),
                builder: format!("{busybox_inside}/bin/busybox").into_bytes(),
                args: vec![b"sh".to_vec(), b"-c".to_vec(), script.as_bytes().to_vec()],
                env,
            },
            store_dir: STORE_DIR.to_owned(),
            outputs: [("out".to_owned(), self.store.join(&out_base))].into(),
            inputs: BTreeSet::from([self.store.join(BUSYBOX)]),
            build_dir_parent: self.builds.clone(),
            cores: 1,
            fixed_output,
            impure_env: Default::default(),
            timeout: Some(Duration::from_secs(120)),
            max_silent_time: None,
            keep_failed: false,
            extra_files: vec![],
            rewrites: Default::default(),
            structured_extra: Default::default(),
            on_build_dir: None,
            cancel: Default::default(),
            live: Default::default(),
        }
    }
}

/// A 32-character nixbase32 hash part made from `name`.
fn hash_for(name: &str) -> String {
    let digest = nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, name.as_bytes());
    digest.encode(nix_formats::hash::Encoding::Nix32, false).chars().take(32).collect()
}

/// Runs `request`, returning the outcome and the log.
pub fn run(backend: &dyn Backend, request: &BuildRequest) -> (BuildOutcome, String) {
    let mut log = String::new();
    let mut sink = |line: &[u8]| {
        log.push_str(&String::from_utf8_lossy(line));
        log.push('\n');
    };
    let outcome = backend.build(request, &mut sink).unwrap();
    (outcome, log)
}

/// Runs `script` (which writes `$out`), expecting success; returns `$out`'s contents.
pub fn build_text(backend: &dyn Backend, fx: &Fixture, name: &str, script: &str, fixed_output: bool) -> String {
    let request = fx.request(name, script, fixed_output);
    let (outcome, log) = run(backend, &request);
    assert_eq!(outcome, BuildOutcome::Success, "log:\n{log}");
    std::fs::read_to_string(&request.outputs["out"]).unwrap()
}

/// A normal build works, its output lands at `BuildRequest::outputs`, and it runs as Nix's
/// sandbox user in `/build`; nothing is left behind.
pub fn normal_build_works(backend: &dyn Backend, fx: &Fixture) {
    let text = build_text(
        backend,
        fx,
        "hello",
        "echo hello > $out; id -u >> $out; id -g >> $out; pwd >> $out; hostname >> $out; echo $NIX_BUILD_TOP >> $out",
        false,
    );
    assert_eq!(text, "hello\n1000\n100\n/build\nlocalhost\n/build\n");
    let request = fx.request("hello", "", false);
    let entries = || -> Vec<String> {
        std::fs::read_dir(&fx.store).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    };
    assert!(!entries().iter().any(|e| e.ends_with(".chroot")), "{:?}", entries());
    assert!(request.outputs["out"].is_file());
    // The sandbox's directories are removed on a thread of their own, after the build.
    let leftovers = || entries().iter().any(|e| e.contains(".chroot.old-")) || std::fs::read_dir(&fx.builds).unwrap().count() > 0;
    for _ in 0..1000 {
        if !leftovers() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!leftovers(), "build directories are removed: {:?}", entries());
    // A failing builder is reported as such.
    let (outcome, log) = run(backend, &fx.request("fails", "echo oops >&2; exit 3", false));
    assert_eq!(outcome, BuildOutcome::Failed(3));
    assert!(log.contains("oops"), "{log}");
}

/// A build that is not fixed-output has only `lo` and cannot reach a TCP listener on the
/// host's loopback; a fixed-output one can.
pub fn network_only_for_fixed_output(backend: &dyn Backend, fx: &Fixture) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' > $out; \
         if echo ping | nc -w 2 127.0.0.1 {port}; then echo reached >> $out; else echo unreachable >> $out; fi"
    );
    let text = build_text(backend, fx, "offline", &script, false);
    assert_eq!(text, "lo\nunreachable\n");
    assert!(listener.accept().is_err(), "the sandboxed build connected to the host");
    // The host side answers by closing the connection, which ends `nc`.
    listener.set_nonblocking(false).unwrap();
    let acceptor = std::thread::spawn(move || listener.accept().map(|(stream, _)| drop(stream)).is_ok());
    let text = build_text(backend, fx, "online", &script, true);
    assert!(text.ends_with("reached\n") && !text.ends_with("unreachable\n"), "{text}");
    assert!(acceptor.join().unwrap());
}

/// A build sees its input closure and nothing else of the store or the host.
pub fn sees_only_its_inputs(backend: &dyn Backend, fx: &Fixture) {
    let host_only = fx.tmp.path().join("host-only");
    std::fs::write(&host_only, "x").unwrap();
    let mut script = String::from(": > $out; ");
    for path in [
        "/etc/shadow".to_owned(),
        "/root".to_owned(),
        "/home".to_owned(),
        format!("{STORE_DIR}/{OTHER}"),
        fx.store.join(OTHER).display().to_string(),
        host_only.display().to_string(),
    ] {
        script.push_str(&format!("if [ -e {path} ]; then echo 'visible {path}' >> $out; fi; "));
    }
    script.push_str(&format!(
        "ls {STORE_DIR} | grep -v blind >> $out; [ -x {STORE_DIR}/{BUSYBOX}/bin/busybox ] && echo ok >> $out"
    ));
    let text = build_text(backend, fx, "blind", &script, false);
    assert_eq!(text, format!("{BUSYBOX}\nok\n"));
}

/// `chmod u+s` and `chmod g+s` fail with EPERM.
pub fn no_setuid_files(backend: &dyn Backend, fx: &Fixture) {
    let script = "touch f; chmod 755 f && echo plain >> $out; \
                  chmod u+s f 2>> $out || echo u+s refused >> $out; \
                  chmod g+s f 2>> $out || echo g+s refused >> $out; \
                  stat -c %a f >> $out";
    let text = build_text(backend, fx, "setuid", script, false);
    assert_eq!(
        text,
        "plain\nchmod: f: Operation not permitted\nu+s refused\nchmod: f: Operation not permitted\ng+s refused\n755\n"
    );
}

/// A build cannot write another store path: an input is read-only, and a path it creates
/// beside its outputs does not reach the host's store.
pub fn cannot_write_other_outputs(backend: &dyn Backend, fx: &Fixture) {
    let other = "0ddddddddddddddddddddddddddddddd-victim";
    let script = format!(
        "echo x > $out; \
         if echo pwned > {STORE_DIR}/{BUSYBOX}/pwned; then echo wrote-input >> $out; fi; \
         mkdir {STORE_DIR}/{other} && echo pwned > {STORE_DIR}/{other}/f; true"
    );
    let text = build_text(backend, fx, "intruder", &script, false);
    assert_eq!(text, "x\n");
    assert!(!fx.store.join(BUSYBOX).join("pwned").exists());
    assert!(!fx.store.join(other).exists());
}

/// The build directory is `/build`, 0700 and owned by the build user inside; on the host it
/// is under a 0700 directory of the daemon's user, so no other user can look in.
pub fn private_build_dir(backend: &dyn Backend, fx: &Fixture) {
    // The builder waits for the test to have looked at the host side.
    let script = "stat -c '%a %u %g' /build > $out; while [ ! -e /build/go ]; do sleep 0.05; done";
    let request = fx.request("private", script, false);
    let builds = fx.builds.clone();
    let watcher = std::thread::spawn(move || {
        loop {
            if let Some(top) = std::fs::read_dir(&builds).unwrap().flatten().next() {
                let build = top.path().join("build");
                if build.is_dir() {
                    let top_meta = std::fs::metadata(top.path()).unwrap();
                    let build_meta = std::fs::metadata(&build).unwrap();
                    std::fs::write(build.join("go"), "").unwrap();
                    return (top_meta.mode() & 0o777, top_meta.uid(), build_meta.mode() & 0o777);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (outcome, log) = run(backend, &request);
    assert_eq!(outcome, BuildOutcome::Success, "{log}");
    let (top_mode, top_uid, build_mode) = watcher.join().unwrap();
    assert_eq!((top_mode, top_uid, build_mode), (0o700, rustix::process::getuid().as_raw(), 0o700));
    assert_eq!(std::fs::read_to_string(&request.outputs["out"]).unwrap(), "700 1000 100\n");
}

/// The command line the fd-passing process runs inside the sandbox: this test executable,
/// running only [`fd_sender_entry`].
fn fd_sender_script(socket: &str) -> String {
    format!("CASNIX_TEST_SEND_FD={socket} /fd-sender --exact fd_sender --test-threads=1 -q >/dev/null")
}

/// What the test executable does when run as the fd sender inside a sandbox: opens `$out`,
/// writes `good`, and sends the open file over the abstract socket named by
/// `CASNIX_TEST_SEND_FD`. Does nothing otherwise.
pub fn fd_sender_entry() {
    use std::os::fd::AsFd;
    let Ok(socket) = std::env::var("CASNIX_TEST_SEND_FD") else { return };
    let out = std::env::var("out").unwrap();
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&out).unwrap();
    file.write_all(b"good").unwrap();
    use std::os::linux::net::SocketAddrExt;
    let stream = UnixStream::connect_addr(&SocketAddr::from_abstract_name(socket.as_bytes()).unwrap()).unwrap();
    let fds = [file.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(&stream, &[std::io::IoSlice::new(b"x")], &mut control, rustix::net::SendFlags::empty())
        .unwrap();
    std::process::exit(0);
}

/// CVE-2024-27297: a fixed-output build passes its open output file to a process outside
/// (this test) and exits; writing through that descriptor afterwards must not change the
/// output the backend delivered.
/// The backend must have [`fd_sender_sandbox_paths`] among its sandbox paths.
pub fn leaked_output_fd_cannot_change_the_output(backend: &dyn Backend, fx: &Fixture) {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("casnix-fd-{}", std::process::id());
    let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        rustix::net::recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut control,
            rustix::net::RecvFlags::empty(),
        )
        .unwrap();
        let mut received = None;
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = message {
                received = fds.next();
            }
        }
        std::fs::File::from(received.unwrap())
    });
    let request = fx.request("leaky", &fd_sender_script(&name), true);
    let (outcome, log) = run(backend, &request);
    assert_eq!(outcome, BuildOutcome::Success, "{log}");
    let mut leaked = receiver.join().unwrap();
    leaked.seek(std::io::SeekFrom::Start(0)).unwrap();
    leaked.write_all(b"evil").unwrap();
    let mut through_fd = String::new();
    leaked.seek(std::io::SeekFrom::Start(0)).unwrap();
    leaked.read_to_string(&mut through_fd).unwrap();
    assert_eq!(through_fd, "evil");
    assert_eq!(std::fs::read_to_string(&request.outputs["out"]).unwrap(), "good");
}

/// The `sandbox-paths` entries [`leaked_output_fd_cannot_change_the_output`] needs: this test
/// executable as `/fd-sender`, and the host's libraries it loads.
pub fn fd_sender_sandbox_paths() -> Vec<String> {
    let mut paths: Vec<String> = ["/usr", "/lib?", "/lib64?", "/lib32?"].iter().map(|s| s.to_string()).collect();
    paths.push(format!("/fd-sender={}", std::env::current_exe().unwrap().display()));
    paths
}
