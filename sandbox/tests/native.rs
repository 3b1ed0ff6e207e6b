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
