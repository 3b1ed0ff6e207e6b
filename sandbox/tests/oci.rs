//! The sandbox properties (`common`) for the `oci` backend: builds run by runc (needs root,
//! or unprivileged user namespaces for `runc --rootless`, and `runc` installed).

#![allow(clippy::unwrap_used)]

mod common;

use sandbox::OciBackend;
use sandbox::plan::{SandboxConfig, SandboxPath};

fn backend_with(fx: &common::Fixture, paths: &[String]) -> OciBackend {
    let config =
        SandboxConfig { paths: paths.iter().filter_map(|p| SandboxPath::parse(p)).collect(), ..Default::default() };
    OciBackend::new(&fx.tmp.path().join("oci-state"), config).unwrap()
}

/// Runs a property with a fresh fixture and backend, then checks that no container is left.
fn check(property: fn(&dyn sandbox::Backend, &common::Fixture), paths: &[String]) {
    let fx = common::Fixture::new();
    let backend = backend_with(&fx, paths);
    property(&backend, &fx);
    assert_eq!(backend.runc().containers(), Vec::<String>::new());
}

/// Not a property: what this executable does when a sandboxed build runs it (see
/// `common::fd_sender_entry`); nothing otherwise.
#[test]
fn fd_sender() {
    common::fd_sender_entry();
}

#[test]
fn normal_build_works() {
    check(common::normal_build_works, &[]);
}

#[test]
fn network_only_for_fixed_output() {
    check(common::network_only_for_fixed_output, &[]);
}

#[test]
fn sees_only_its_inputs() {
    check(common::sees_only_its_inputs, &[]);
}

#[test]
fn no_setuid_files() {
    check(common::no_setuid_files, &[]);
}

#[test]
fn cannot_write_other_outputs() {
    check(common::cannot_write_other_outputs, &[]);
}

#[test]
fn private_build_dir() {
    check(common::private_build_dir, &[]);
}

#[test]
fn leaked_output_fd_cannot_change_the_output() {
    check(common::leaked_output_fd_cannot_change_the_output, &common::fd_sender_sandbox_paths());
}
