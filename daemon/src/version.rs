//! The version casnix-daemon reports.
//!
//! Clients compare the daemon's version with Nix's (`builtins.compareVersions` in Nix's test
//! suite, feature checks in `nix store info`), so it starts with the Nix release whose
//! protocol and behaviour casnix follows; the suffix names casnix and its own version.
//! `2.26.3-casnix.0.1.0` compares as newer than `2.26.3` and older than `2.27`.

/// The Nix release casnix-daemon behaves as.
pub const NIX_COMPAT_VERSION: &str = "2.26.3";

/// The version string: sent in the handshake and printed by `--version`.
pub fn version_string() -> String {
    format!("{NIX_COMPAT_VERSION}-casnix.{}", env!("CARGO_PKG_VERSION"))
}

/// The first line of `casnix-daemon --version`; the version is its third word, as in
/// `nix-daemon (Nix) 2.26.3`.
pub fn version_line() -> String {
    format!("casnix-daemon (Nix) {}", version_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_third_word() {
        assert_eq!(version_line().split(' ').nth(2), Some(version_string().as_str()));
        assert!(version_string().starts_with("2.26.3-casnix."));
    }
}
