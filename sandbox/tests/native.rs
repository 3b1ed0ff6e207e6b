//! The sandbox properties (`common`) for the `native` backend, run with the helper Cargo built.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use sandbox::plan::{SandboxConfig, SandboxPath};
use sandbox::NativeSandbox;

fn backend_with(paths: &[String]) -> NativeSandbox {
    let config = SandboxConfig { paths: paths.iter().filter_map(|p| SandboxPath::parse(p)).collect(), ..Default::default() };
    NativeSandbox::new(config, PathBuf::from(env!("CARGO_BIN_EXE_casnix-build-sandbox")))
}

fn backend() -> NativeSandbox {
    backend_with(&[])
}

/// Not a property: what this executable does when a sandboxed build runs it (see
/// `common::fd_sender_entry`); nothing otherwise.
#[test]
fn fd_sender() {
    common::fd_sender_entry();
}

#[test]
fn normal_build_works() {
    common::normal_build_works(&backend(), &common::Fixture::new());
}

#[test]
fn network_only_for_fixed_output() {
    common::network_only_for_fixed_output(&backend(), &common::Fixture::new());
}

#[test]
fn sees_only_its_inputs() {
    common::sees_only_its_inputs(&backend(), &common::Fixture::new());
}

#[test]
fn no_setuid_files() {
    common::no_setuid_files(&backend(), &common::Fixture::new());
}

#[test]
fn cannot_write_other_outputs() {
    common::cannot_write_other_outputs(&backend(), &common::Fixture::new());
}

#[test]
fn private_build_dir() {
    common::private_build_dir(&backend(), &common::Fixture::new());
}

#[test]
fn leaked_output_fd_cannot_change_the_output() {
    let backend = backend_with(&common::fd_sender_sandbox_paths());
    common::leaked_output_fd_cannot_change_the_output(&backend, &common::Fixture::new());
}

#[test]
fn a_missing_helper_is_an_error() {
    let backend = NativeSandbox::new(SandboxConfig::default(), PathBuf::from("/nonexistent/casnix-build-sandbox"));
    let fx = common::Fixture::new();
    let mut sink = |_: &[u8]| {};
    let err = sandbox::Backend::build(&backend, &fx.request("x", "true", false), &mut sink).unwrap_err();
    assert!(err.to_string().contains("casnix-build-sandbox"), "{err}");
}

/// A helper wrapped so the kernel refuses it user namespaces (a user namespace of its own
/// whose limit is 0).
fn helper_without_namespaces(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = dir.join("no-userns-helper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"' {} \"$@\"\n",
            env!("CARGO_BIN_EXE_casnix-build-sandbox")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn without_namespaces_a_clear_error_or_nix_s_fallback() {
    let fx = common::Fixture::new();
    let helper = helper_without_namespaces(fx.tmp.path());
    let strict = NativeSandbox::new(SandboxConfig { fallback: false, ..Default::default() }, helper.clone());
    let request = fx.request("fallback", "echo $NIX_BUILD_TOP > $out", false);
    let mut sink = |_: &[u8]| {};
    let err = sandbox::Backend::build(&strict, &request, &mut sink).unwrap_err().to_string();
    assert!(err.contains("cannot create the build sandbox's namespaces"), "{err}");
    assert!(!request.outputs["out"].exists());
    // `sandbox-fallback` (on by default): the build runs unsandboxed, in a host directory.
    // (So the builder is where the host has it.)
    let mut request = request;
    let bin = fx.store.join(common::BUSYBOX).join("bin");
    request.derivation.builder = bin.join("busybox").display().to_string().into_bytes();
    request.derivation.env.insert(b"PATH".to_vec(), bin.display().to_string().into_bytes());
    request.derivation.env.insert(b"out".to_vec(), request.outputs["out"].display().to_string().into_bytes());
    let lenient = NativeSandbox::new(SandboxConfig::default(), helper);
    let (outcome, log) = common::run(&lenient, &request);
    assert_eq!(outcome, sandbox::BuildOutcome::Success, "{log}");
    let top = std::fs::read_to_string(&request.outputs["out"]).unwrap();
    assert!(top.starts_with(&fx.builds.display().to_string()), "{top}");
}

/// A backend with a zygote of its own (the helper under another name: zygotes are per helper),
/// so that killing it disturbs no other test.
fn backend_with_own_zygote(dir: &std::path::Path) -> NativeSandbox {
    let helper = dir.join("own-zygote-helper");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_casnix-build-sandbox"), &helper).unwrap();
    NativeSandbox::new(SandboxConfig::default(), helper)
}

fn kill_zygote(backend: &NativeSandbox) {
    let pid = backend.zygote_pid().expect("the zygote runs after a build");
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    // Gone once `zygote_pid` (which reaps it) no longer sees it.
    while backend.zygote_pid() == Some(pid) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_killed_zygote_is_replaced_by_the_next_build() {
    let fx = common::Fixture::new();
    let backend = backend_with_own_zygote(fx.tmp.path());
    assert_eq!(common::build_text(&backend, &fx, "before", "echo one > $out", false), "one\n");
    let first = backend.zygote_pid().unwrap();
    kill_zygote(&backend);
    assert_eq!(common::build_text(&backend, &fx, "after", "echo two > $out", false), "two\n");
    assert_ne!(backend.zygote_pid(), Some(first));
}

#[test]
fn builds_in_flight_fail_clearly_when_the_zygote_dies() {
    let fx = common::Fixture::new();
    let backend = backend_with_own_zygote(fx.tmp.path());
    common::build_text(&backend, &fx, "start", "echo > $out", false);
    let request = fx.request("long", "echo started; sleep 60; echo > $out", false);
    let started = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let build = scope.spawn(|| {
            let mut sink = |line: &[u8]| {
                if line == b"started" {
                    started.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            };
            sandbox::Backend::build(&backend, &request, &mut sink)
        });
        // Once the builder runs, the zygote goes.
        while !started.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(!build.is_finished(), "the build ended before its builder started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        kill_zygote(&backend);
        let err = build.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("zygote"), "{err}");
    });
    assert!(!request.outputs["out"].exists());
    assert_eq!(common::build_text(&backend, &fx, "later", "echo three > $out", false), "three\n");
}

#[test]
fn concurrent_builds_run_side_by_side() {
    // Each builder says it started, then waits for a flag the test sets once both said so:
    // they finish only if both run at once.
    let fx = common::Fixture::new();
    let meeting = fx.tmp.path().join("meeting");
    std::fs::create_dir(&meeting).unwrap();
    let backend = backend_with(&[format!("/meeting={}", meeting.display())]);
    let script = "echo started; i=0; while [ ! -e /meeting/go ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.05; done; echo $name > $out";
    let (a, b) = (fx.request("a", script, false), fx.request("b", script, false));
    let started = std::sync::atomic::AtomicUsize::new(0);
    let run = |request: &sandbox::BuildRequest| {
        let mut log = String::new();
        let mut sink = |line: &[u8]| {
            if line == b"started" {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            log.push_str(&String::from_utf8_lossy(line));
        };
        (sandbox::Backend::build(&backend, request, &mut sink).unwrap(), log)
    };
    std::thread::scope(|scope| {
        let first = scope.spawn(|| run(&a));
        let second = scope.spawn(|| run(&b));
        while started.load(std::sync::atomic::Ordering::SeqCst) < 2 && !(first.is_finished() || second.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::write(meeting.join("go"), "").unwrap();
        for (build, name) in [(first, "a"), (second, "b")] {
            let (outcome, log) = build.join().unwrap();
            assert_eq!(outcome, sandbox::BuildOutcome::Success, "{name}: {log}");
        }
    });
    assert_eq!(std::fs::read_to_string(&a.outputs["out"]).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(&b.outputs["out"]).unwrap(), "b\n");
}

#[test]
fn the_root_is_read_only_but_tmp_build_and_the_store_are_writable() {
    let fx = common::Fixture::new();
    let script = "if touch /x 2>/dev/null || touch /etc/x 2>/dev/null || chmod 666 /etc/passwd 2>/dev/null; then exit 1; fi; \
                  touch /tmp/x /build/x && grep -q nixbld /etc/passwd && ls /dev/null /dev/shm /dev/pts >/dev/null && echo ok > $out";
    assert_eq!(common::build_text(&backend(), &fx, "ro-root", script, false), "ok\n");
}
