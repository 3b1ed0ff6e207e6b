//! Nix's builtin builders (`builtin:…`), run by the daemon itself: `buildenv` (user
//! environments for `nix-env` profiles), `fetchurl` (`file://` URLs; there is no network) and
//! `unpack-channel` (`nix-channel --update`).

pub mod buildenv;
pub mod fetchurl;
pub mod unpack_channel;

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

/// What a builtin builder requires of its derivation before it runs: `builtin:fetchurl` must
/// be fixed-output or impure (it is the only one allowed network access).
pub fn check(drv: &Derivation) -> Result<(), BuiltinError> {
    use nix_formats::derivation::DerivationOutput;
    if drv.builder.as_slice() == b"builtin:fetchurl"
        && !drv.outputs.values().all(|o| matches!(o, DerivationOutput::CaFixed(_) | DerivationOutput::Impure(_)))
    {
        return Err(BuiltinError("'builtin:fetchurl' must be a fixed-output or impure derivation".into()));
    }
    Ok(())
}

/// Runs the builtin builder of `drv`, writing its outputs at `outputs`.
pub fn run(drv: &Derivation, outputs: &BTreeMap<String, PathBuf>) -> Result<(), BuiltinError> {
    check(drv)?;
    let out = || outputs.get("out").ok_or_else(|| BuiltinError("the derivation has no output 'out'".into()));
    match drv.builder.as_slice() {
        b"builtin:buildenv" => buildenv::build(drv, out()?),
        b"builtin:fetchurl" => fetchurl::fetch(drv, out()?),
        b"builtin:unpack-channel" => unpack_channel::unpack(drv, out()?),
        other => Err(BuiltinError(format!("unsupported builtin builder '{}'", String::from_utf8_lossy(other)))),
    }
}
