//! Substitution in the daemon: the session's substituters (`substituters`, the client's
//! accepted `extra-substituters`, `trusted-public-keys`, `require-sigs`, `substitute`), and the
//! builder's step of taking a derivation's outputs or an opaque path from them before building
//! (Nix's substitution goals). The caches themselves are read by [`store::substitute`].

use std::collections::BTreeMap;
use std::sync::Arc;

use nix_formats::build_result::BuildStatus;
use nix_formats::content_address::ContentAddress;
use nix_formats::derivation::{Derivation, DerivationOutput};
use nix_formats::signature::TrustedKeys;
use nix_formats::store_path::StorePath;
use store::substitute::{SubstituteEvent, Substituters};
use store::Store;
use worker_protocol::logger::Verbosity;

use super::{BuildFailure, Builder};
use crate::bridge::LogTx;
use crate::ops::other::warning;
use crate::settings::Settings;

/// The substituters of a session: `None` when substitution is off (`substitute = false` in
/// `nix.conf`, or the client's `SetOptions`) or there are none casnix can read. Caches that
/// cannot be opened and malformed keys are reported through `warn`.
pub fn session_substituters(
    settings: &Settings,
    client_allows: bool,
    store: &Store,
    warn: &mut dyn FnMut(String),
) -> Option<Arc<Substituters>> {
    let enabled = settings.raw.get("substitute").is_none_or(|v| v == "true" || v == "1");
    if !enabled || !client_allows || settings.substituters.is_empty() {
        return None;
    }
    let mut keys = TrustedKeys::new();
    for text in &settings.trusted_public_keys {
        match text.parse::<nix_formats::signature::PublicKey>() {
            Ok(key) => {
                keys.insert(key);
            }
            Err(e) => warn(format!("ignoring malformed trusted public key '{text}': {e}")),
        }
    }
    let subs = Substituters::open(&settings.substituters, store.store_dir(), keys, settings.require_sigs, warn);
    (!subs.is_empty()).then(|| Arc::new(subs))
}

/// Whether the derivation lets its outputs be substituted (`allowSubstitutes`, default true).
pub fn substitutes_allowed(drv: &Derivation) -> bool {
    if let Some(json) = drv.env.get(&b"__json"[..]) {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        return value.get("allowSubstitutes").and_then(|v| v.as_bool()).unwrap_or(true);
    }
    drv.env.get(&b"allowSubstitutes"[..]).is_none_or(|v| v == b"1")
}

/// The content address a derivation's output will have, when it is fixed.
pub fn output_ca(drv: &Derivation, output: &str) -> Option<ContentAddress> {
    match drv.outputs.get(output) {
        Some(DerivationOutput::CaFixed(ca)) => Some(ContentAddress { method: ca.method, hash: ca.hash.clone() }),
        _ => None,
    }
}

/// Substitutes `path` (with `ca` when known), its progress and warnings logged as Nix logs
/// them. `Ok(false)`: no substituter has it.
pub fn substitute_logged(
    store: &Store,
    subs: &Substituters,
    log: &LogTx,
    path: &StorePath,
    ca: Option<&ContentAddress>,
) -> Result<bool, String> {
    let mut events = |event: SubstituteEvent| match event {
        SubstituteEvent::Copying { path, from } => {
            log.line(Verbosity::Info, format!("copying path '{}' from '{from}'...", store.print(path)));
        }
        SubstituteEvent::Warning(text) => log.line(Verbosity::Warn, warning(&text)),
    };
    store.substitute(subs, path, ca, &mut events).map_err(|e| e.to_string())
}

impl Builder<'_> {
    /// Tries to substitute an invalid opaque path.
    pub(super) fn substitute_opaque(&self, path: &StorePath) -> Result<bool, BuildFailure> {
        let Some(subs) = &self.settings.substituters else { return Ok(false) };
        substitute_logged(self.store, subs, &self.log, path, None).map_err(BuildFailure::misc)
    }

    /// Before building `drv`: its missing outputs taken from the substituters. `Some` status
    /// when all of them are valid afterwards; an error when a substituter failed and
    /// `fallback` is off (Nix's message); `None` to build.
    pub(super) fn substitute_outputs(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
    ) -> Result<Option<BuildStatus>, BuildFailure> {
        let Some(subs) = &self.settings.substituters else { return Ok(None) };
        if !substitutes_allowed(drv) {
            return Ok(None);
        }
        let mut all = true;
        let mut failed = false;
        for (name, path) in outputs {
            if self.store.is_valid(path).map_err(|e| BuildFailure::misc(e.to_string()))? {
                continue;
            }
            match substitute_logged(self.store, subs, &self.log, path, output_ca(drv, name).as_ref()) {
                Ok(true) => {}
                Ok(false) => all = false,
                Err(e) => {
                    self.log.line(Verbosity::Warn, warning(&format!("substitution of '{}' failed: {e}", self.print(path))));
                    failed = true;
                    all = false;
                }
            }
        }
        if all {
            return Ok(Some(BuildStatus::Substituted));
        }
        if failed && !self.settings.fallback {
            return Err(BuildFailure::misc(format!(
                "some substitutes for the outputs of derivation '{}' failed (usually happens due to networking issues); try '--fallback' to build derivation from source ",
                self.print(drv_path)
            )));
        }
        Ok(None)
    }
}
