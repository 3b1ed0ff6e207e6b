//! What is particular to the `oci` backend: containers and mounts never outlive a build (also
//! when a timeout kills it), runc's own failures are reported as errors, a missing runc is
//! named, and the container is what Nix's sandbox is (uid 1000, hostname `localhost`, `lo`).
//! Needs root and `runc` (scripts/test-all.sh installs it).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix_formats::derivation::Derivation;
use sandbox::oci::OciBackend;
use sandbox::plan::{SandboxConfig, SandboxPath};
use sandbox::{Backend, BuildOutcome, BuildRequest, SandboxError};

struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    state: PathBuf,
    builds: PathBuf,
    busybox: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // The container's root lives in the store directory, which runc's setup must be able to
    // reach: like /nix/store, its ancestors are searchable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    let busybox_path = store.join("00000000000000000000000000000bb0-busybox");
    std::fs::create_dir_all(busybox_path.join("bin")).unwrap();
    let busybox = busybox_path.join("bin/busybox");
    std::fs::copy("/bin/busybox", &busybox).unwrap();
    let builds = dir.path().join("builds");
    std::fs::create_dir(&builds).unwrap();
    Fixture { state: dir.path().join("oci-state"), store, builds, busybox, _dir: dir }
}

impl Fixture {
    fn backend(&self) -> OciBackend {
        OciBackend::new(&self.state, SandboxConfig::default()).unwrap()
    }

    fn request(&self, name: &str, script: &str) -> BuildRequest {
        let out = self.store.join(format!("0000000000000000000000000000{:04}-{name}", name.len()));
        let store_dir = self.store.to_str().unwrap().to_owned();
        BuildRequest {
            drv_base_name: format!("00000000000000000000000000000drv-{name}.drv"),
            derivation: Derivation {
                name: name.into(),
                outputs: Default::default(),
                input_drvs: Default::default(),
                input_srcs: Default::default(),
                system: b"x86_64-linux".to_vec(),
                builder: self.busybox.to_str().unwrap().as_bytes().to_vec(),
                args: vec![b"sh".to_vec(), b"-c".to_vec(), script.as_bytes().to_vec()],
                env: [
                    (b"PATH".to_vec(), self.busybox.parent().unwrap().to_str().unwrap().as_bytes().to_vec()),
                    (b"out".to_vec(), out.to_str().unwrap().as_bytes().to_vec()),
                ]
                .into_iter()
                .collect(),
            },
            store_dir,
            outputs: BTreeMap::from([("out".to_owned(), out.clone())]),
            inputs: BTreeSet::from([self.busybox.parent().unwrap().parent().unwrap().to_path_buf()]),
            build_dir_parent: self.builds.clone(),
            cores: 1,
            fixed_output: false,
            impure_env: BTreeMap::new(),
            timeout: None,
            max_silent_time: None,
            keep_failed: false,
            extra_files: Vec::new(),
            rewrites: BTreeMap::new(),
            structured_extra: BTreeMap::new(),
            on_build_dir: None,
            cancel: Default::default(),
            live: Default::default(),
        }
    }

    /// Nothing of a build is left: no container, no chroot, no build directory, no mount.
    fn assert_clean(&self, backend: &OciBackend) {
        assert_eq!(backend.runc().containers(), Vec::<String>::new());
        let leftovers: Vec<PathBuf> = std::fs::read_dir(&self.store)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".chroot"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(std::fs::read_dir(&self.builds).unwrap().count(), 0);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self._dir.path().to_string_lossy().into_owned();
        assert!(!mounts.contains(&root), "{mounts}");
    }
}

fn run(backend: &OciBackend, request: &BuildRequest) -> (Result<BuildOutcome, SandboxError>, String) {
    let mut log = Vec::new();
    let result = backend.build(request, &mut |line: &[u8]| {
        log.extend_from_slice(line);
        log.push(b'\n');
    });
    (result, String::from_utf8_lossy(&log).into_owned())
}

fn out_path(request: &BuildRequest) -> &Path {
    &request.outputs["out"]
}

#[test]
fn the_container_looks_like_nix_s_sandbox() {
    let f = fixture();
    let backend = f.backend();
    let request = f.request(
        "looks",
        "mkdir $out; id -u > $out/uid; id -g > $out/gid; cat /proc/sys/kernel/hostname > $out/hostname; \
         pwd > $out/pwd; ip link show lo | grep -c UP > $out/lo; echo $NIX_BUILD_TOP > $out/top; \
         grep -c . /proc/self/uid_map > $out/maps; echo built",
    );
    let (result, log) = run(&backend, &request);
    assert_eq!(result.unwrap(), BuildOutcome::Success, "{log}");
    assert!(log.contains("built"), "{log}");
    let read = |name: &str| {
        std::fs::read_to_string(out_path(&request).join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; {log}"))
            .trim()
            .to_owned()
    };
    // Rootless (a daemon that is not root), the one ID an unprivileged user namespace maps is
    // runc's root, and the builder's.
    let rootful = sandbox::oci::bundle::IdMode::current() == sandbox::oci::bundle::IdMode::Rootful;
    assert_eq!(read("uid"), if rootful { "1000" } else { "0" });
    assert_eq!(read("gid"), if rootful { "100" } else { "0" });
    assert_eq!(read("hostname"), "localhost");
    assert_eq!(read("pwd"), "/build");
    assert_eq!(read("top"), "/build");
    assert_eq!(read("lo"), "1");
    f.assert_clean(&backend);
}

#[test]
fn a_timeout_kills_the_container_and_leaves_nothing() {
    let f = fixture();
    let backend = f.backend();
    let mut request = f.request("sleepy", "echo start; sleep 1000 & sleep 1000");
    request.timeout = Some(Duration::from_secs(2));
    let (result, log) = run(&backend, &request);
    assert_eq!(result.unwrap(), BuildOutcome::TimedOut(Duration::from_secs(2)), "{log}");
    assert!(log.contains("start"));
    assert!(!out_path(&request).exists());
    f.assert_clean(&backend);
    // No process of the build survives it.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 1000"));
}

#[test]
fn max_silent_time_kills_too() {
    let f = fixture();
    let backend = f.backend();
    let mut request = f.request("silent", "sleep 1000");
    request.max_silent_time = Some(Duration::from_secs(1));
    let (result, _) = run(&backend, &request);
    assert_eq!(result.unwrap(), BuildOutcome::Silent(Duration::from_secs(1)));
    f.assert_clean(&backend);
}

#[test]
fn a_failing_builder_reports_its_exit_code() {
    let f = fixture();
    let backend = f.backend();
    let (result, log) = run(&backend, &f.request("fails", "echo oops >&2; exit 3"));
    assert_eq!(result.unwrap(), BuildOutcome::Failed(3));
    assert!(log.contains("oops"));
    f.assert_clean(&backend);
}

#[test]
fn runc_s_own_failure_is_an_error() {
    let f = fixture();
    let backend = f.backend();
    let mut request = f.request("nobuilder", "true");
    request.derivation.builder = b"/no/such/builder".to_vec();
    let (result, _) = run(&backend, &request);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("runc could not run the builder"), "{message}");
    assert!(message.contains("/no/such/builder"), "{message}");
    f.assert_clean(&backend);
}

#[test]
fn a_missing_runc_is_named() {
    let f = fixture();
    let err = OciBackend::with_runc(PathBuf::from("/no/such/runc"), &f.state, SandboxConfig::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("runc") && message.contains("apt-get install runc"), "{message}");
}

#[test]
fn stale_containers_of_dead_daemons_are_removed() {
    let f = fixture();
    let backend = f.backend();
    // A container a casnix process that is gone left behind, created (not started) by hand.
    let mut request = f.request("stale", "true");
    request.keep_failed = false;
    let plan = sandbox::plan::plan(&request, &SandboxConfig::default()).unwrap().unwrap();
    let prepared = sandbox::prepare::prepare(&request, plan).unwrap();
    let spec = sandbox::oci::bundle::container_spec(
        &prepared.plan,
        sandbox::oci::bundle::IdMode::current(),
        vec![f.busybox.to_str().unwrap().as_bytes().to_vec(), b"true".to_vec()],
        Vec::new(),
    )
    .unwrap();
    sandbox::oci::bundle::adapt_root(&prepared.plan, sandbox::oci::bundle::IdMode::current()).unwrap();
    sandbox::oci::config::write(&prepared.plan.chroot_dir, &spec).unwrap();
    let status = std::process::Command::new(backend.runc().binary())
        .arg("--root")
        .arg(backend.runc().state_dir())
        .args(["create", "--bundle"])
        .arg(&prepared.plan.chroot_dir)
        .arg("casnix-999999999-0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(backend.runc().containers(), vec!["casnix-999999999-0".to_owned()]);
    let again = f.backend();
    assert_eq!(again.runc().containers(), Vec::<String>::new());
    drop(prepared);
    f.assert_clean(&again);
}

#[test]
fn setuid_bits_are_refused_and_no_privileges_are_left() {
    let f = fixture();
    let backend = f.backend();
    let request = f.request(
        "suid",
        "mkdir $out; touch x; chmod u+s x && echo suid-set; chmod g+s x && echo sgid-set; \
         chmod 0755 x && echo plain-ok; grep Seccomp: /proc/self/status; grep NoNewPrivs /proc/self/status; \
         grep CapEff /proc/self/status",
    );
    let (result, log) = run(&backend, &request);
    assert_eq!(result.unwrap(), BuildOutcome::Success, "{log}");
    assert!(!log.contains("suid-set") && !log.contains("sgid-set"), "{log}");
    assert!(log.contains("plain-ok"), "{log}");
    assert!(log.contains("Seccomp:\t2"), "{log}");
    assert!(log.contains("NoNewPrivs:\t1"), "{log}");
    assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    f.assert_clean(&backend);
}

#[test]
fn a_store_that_runc_cannot_reach_is_explained() {
    let f = fixture();
    let backend = f.backend();
    if sandbox::oci::bundle::IdMode::current() != sandbox::oci::bundle::IdMode::Rootful {
        return;
    }
    std::fs::set_permissions(&f.store, std::fs::Permissions::from_mode(0o750)).unwrap();
    let mut request = f.request("unreachable", "true");
    request.outputs.insert("out".into(), f.store.join("sub/00000000000000000000000000000000-x"));
    std::fs::create_dir(f.store.join("sub")).unwrap();
    let (result, _) = run(&backend, &request);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("searchable by others") && message.contains("mode 750"), "{message}");
    std::fs::remove_dir(f.store.join("sub")).unwrap();
    f.assert_clean(&backend);
}

/// Not a property: when a sandboxed build runs this executable with `CASNIX_TEST_FCHMODAT2`
/// naming a file, it calls `fchmodat2` (which busybox never does) on it with a plain mode and
/// with the setuid bit, writes `plain=<result> setuid=<result>/<errno>` to `$out` and exits.
#[test]
#[allow(unsafe_code)]
fn fchmodat2_prober() {
    let Ok(file) = std::env::var("CASNIX_TEST_FCHMODAT2") else { return };
    let path = std::ffi::CString::new(file).unwrap();
    let call = |mode: libc::c_uint| {
        // SAFETY: a raw system call with a valid NUL-terminated path and plain integers.
        let result = unsafe { libc::syscall(452, libc::AT_FDCWD, path.as_ptr(), mode, 0) };
        (result, std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    };
    let (plain, _) = call(0o755);
    let (setuid, errno) = call(0o4755);
    std::fs::write(std::env::var("out").unwrap(), format!("plain={plain} setuid={setuid}/{errno}\n")).unwrap();
    std::process::exit(0);
}

#[test]
fn fchmodat2_cannot_set_the_setuid_bit() {
    let f = fixture();
    let paths = ["/usr", "/lib?", "/lib64?"].iter().map(|p| p.to_string()).chain([format!(
        "/prober={}",
        std::env::current_exe().unwrap().display()
    )]);
    let config = SandboxConfig { paths: paths.filter_map(|p| SandboxPath::parse(&p)).collect(), ..Default::default() };
    let backend = OciBackend::new(&f.state, config).unwrap();
    let request = f.request(
        "fchmodat2",
        "touch f; CASNIX_TEST_FCHMODAT2=f /prober --exact fchmodat2_prober --test-threads=1 -q > /dev/null",
    );
    let (result, log) = run(&backend, &request);
    assert_eq!(result.unwrap(), BuildOutcome::Success, "{log}");
    assert_eq!(std::fs::read_to_string(out_path(&request)).unwrap(), "plain=0 setuid=-1/1\n");
    f.assert_clean(&backend);
}
