//! Nix's builtin builders (`builtin:…`), run by the daemon itself: `buildenv` (user
//! environments for `nix-env` profiles) and `fetchurl` (`file://` URLs; there is no network).

pub mod buildenv;
pub mod fetchurl;

use std::collections::BTreeMap;
use std::path::PathBuf;

use nix_formats::derivation::Derivation;

/// Why a builtin builder failed (the text the builder's log shows).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuiltinError(pub String);

impl BuiltinError {
    fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Self {
        move |e| Self(format!("{context}: {e}"))
    }
}

/// A derivation attribute (environment variable) as text.
fn attr(drv: &Derivation, name: &str) -> Result<String, BuiltinError> {
    drv.env
        .get(name.as_bytes())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| BuiltinError(format!("attribute '{name}' missing")))
}

/// Runs the builtin builder of `drv`, writing its outputs at `outputs`.
pub fn run(drv: &Derivation, outputs: &BTreeMap<String, PathBuf>) -> Result<(), BuiltinError> {
    let out = || outputs.get("out").ok_or_else(|| BuiltinError("the derivation has no output 'out'".into()));
    match drv.builder.as_slice() {
        b"builtin:buildenv" => buildenv::build(drv, out()?),
        b"builtin:fetchurl" => fetchurl::fetch(drv, out()?),
        other => Err(BuiltinError(format!("unsupported builtin builder '{}'", String::from_utf8_lossy(other)))),
    }
}
