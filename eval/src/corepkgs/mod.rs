//! Nix's built-in search path entry `nix`: `<nix/fetchurl.nix>` and friends are files compiled
//! into the evaluator, found after every `NIX_PATH`/`-I` entry (so a user's `nix=...` wins).
//! They appear as paths under [`PREFIX`].

/// Where corepkgs files appear as paths.
pub const PREFIX: &str = "/__corepkgs__/";

/// The text of the corepkgs file at `path` (a path under [`PREFIX`]), if there is one.
pub fn source(path: &str) -> Option<&'static str> {
    match path.strip_prefix(PREFIX)? {
        "fetchurl.nix" => Some(include_str!("fetchurl.nix")),
        _ => None,
    }
}
