//! `nix.conf`: the settings a daemon reads, in Nix's file format.
//!
//! The format (Nix 2.26, `config.cc`): one `name = value` per line, `#` starts a comment,
//! `include FILE` and `!include FILE` (the latter silent when missing) read another file
//! relative to the current one, and `extra-NAME = value` appends to a list setting. Values of
//! list settings are separated by whitespace. The daemon reads `$NIX_CONF_DIR/nix.conf`
//! (default `/etc/nix/nix.conf`), then the lines of `$NIX_CONFIG`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most nested `include`s followed.
const MAX_INCLUDE_DEPTH: usize = 16;
/// The largest configuration file read.
const MAX_FILE_SIZE: u64 = 1 << 20;

/// A configuration error.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file could not be read.
    #[error("reading '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not `name = value`, an include or a comment.
    #[error("syntax error in configuration line '{0}'")]
    Syntax(String),
    /// Includes nest too deeply (a cycle, most likely).
    #[error("too many nested includes at '{0}'")]
    TooDeep(PathBuf),
    /// A file is larger than [`MAX_FILE_SIZE`].
    #[error("configuration file '{0}' is too large")]
    TooLarge(PathBuf),
    /// A value has the wrong form for its setting.
    #[error("configuration setting '{name}' should be {expected}, not '{value}'")]
    BadValue {
        /// The setting.
        name: String,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        value: String,
    },
}

/// The raw settings: every name with its value as written (after `extra-` appends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
}

impl RawSettings {
    /// Reads `$NIX_CONF_DIR/nix.conf` (missing is fine) and then `$NIX_CONFIG`.
    pub fn load(conf_dir: &Path, nix_config: Option<&str>) -> Result<Self, SettingsError> {
        let mut raw = Self::default();
        raw.read_file(&conf_dir.join("nix.conf"), true, 0)?;
        if let Some(text) = nix_config {
            raw.apply_text(text, conf_dir, 0)?;
        }
        Ok(raw)
    }

    /// Parses configuration text; includes are relative to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, SettingsError> {
        let mut raw = Self::default();
        raw.apply_text(text, dir, 0)?;
        Ok(raw)
    }

    fn read_file(&mut self, path: &Path, optional: bool, depth: usize) -> Result<(), SettingsError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(SettingsError::TooDeep(path.to_owned()));
        }
        let io = |source| SettingsError::Io { path: path.to_owned(), source };
        match std::fs::metadata(path) {
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
            Ok(m) if m.len() > MAX_FILE_SIZE => return Err(SettingsError::TooLarge(path.to_owned())),
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        self.apply_text(&text, dir, depth)
    }

    fn apply_text(&mut self, text: &str, dir: &Path, depth: usize) -> Result<(), SettingsError> {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            if *first == "include" || *first == "!include" {
                let [_, file] = words[..] else { return Err(SettingsError::Syntax(line.trim().to_owned())) };
                let path = dir.join(file);
                self.read_file(&path, *first == "!include", depth + 1)?;
                continue;
            }
            if words.get(1) != Some(&"=") {
                return Err(SettingsError::Syntax(line.trim().to_owned()));
            }
            let value = words[2..].join(" ");
            self.set(first, &value);
        }
        Ok(())
    }

    /// Sets `name` (or appends, for `extra-name`).
    pub fn set(&mut self, name: &str, value: &str) {
        if let Some(base) = name.strip_prefix("extra-") {
            let entry = self.values.entry(base.to_owned()).or_default();
            if !entry.is_empty() && !value.is_empty() {
                entry.push(' ');
            }
            entry.push_str(value);
        } else {
            self.values.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every setting as `name = value` lines (what Nix passes to hooks as `NIX_CONFIG`).
    pub fn to_key_value(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
    }
}

/// The settings that matter to casnix-daemon, with Nix's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `trusted-users` (default `root`); `@group` names a group, `*` everyone.
    pub trusted_users: Vec<String>,
    /// `allowed-users` (default `*`).
    pub allowed_users: Vec<String>,
    /// `build-users-group` (empty: builds run as the daemon's user).
    pub build_users_group: String,
    /// `sandbox`: `true`, `false` or `relaxed`.
    pub sandbox: String,
    /// casnix's `sandbox-backend`: `native` (default), `oci` or `none`; `sandbox = false`
    /// means `none` whatever this says.
    pub sandbox_backend: String,
    /// `sandbox-paths` (with `extra-sandbox-paths`): `target=source`, `?` for optional.
    pub sandbox_paths: Vec<String>,
    /// `max-jobs` (`auto` is the number of CPUs).
    pub max_jobs: u32,
    /// `cores` (0: all).
    pub cores: u32,
    /// `substituters`.
    pub substituters: Vec<String>,
    /// `trusted-substituters`.
    pub trusted_substituters: Vec<String>,
    /// `trusted-public-keys`.
    pub trusted_public_keys: Vec<String>,
    /// `require-sigs` (default true).
    pub require_sigs: bool,
    /// `keep-outputs` (default false).
    pub keep_outputs: bool,
    /// `keep-derivations` (default true).
    pub keep_derivations: bool,
    /// `experimental-features`.
    pub experimental_features: Vec<String>,
    /// Everything as written, for settings not modelled here.
    pub raw: RawSettings,
}

fn list(raw: &RawSettings, name: &str, default: &[&str]) -> Vec<String> {
    match raw.get(name) {
        Some(v) => v.split_whitespace().map(str::to_owned).collect(),
        None => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn boolean(raw: &RawSettings, name: &str, default: bool) -> Result<bool, SettingsError> {
    match raw.get(name) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => {
            Err(SettingsError::BadValue { name: name.into(), expected: "a Boolean", value: other.into() })
        }
    }
}

fn number(raw: &RawSettings, name: &str, default: u32, auto: Option<u32>) -> Result<u32, SettingsError> {
    match (raw.get(name), auto) {
        (None, _) => Ok(default),
        (Some("auto"), Some(n)) => Ok(n),
        (Some(v), _) => v.parse().map_err(|_| SettingsError::BadValue {
            name: name.into(),
            expected: "an integer",
            value: v.into(),
        }),
    }
}

fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

impl Settings {
    /// Interprets raw settings; unknown names are kept in [`Settings::raw`].
    pub fn from_raw(raw: RawSettings) -> Result<Self, SettingsError> {
        let sandbox = match raw.get("sandbox").or_else(|| raw.get("build-use-sandbox")) {
            None => "true".to_owned(),
            Some(v @ ("true" | "false" | "relaxed")) => v.to_owned(),
            Some(v) => {
                return Err(SettingsError::BadValue {
                    name: "sandbox".into(),
                    expected: "true, false or relaxed",
                    value: v.into(),
                })
            }
        };
        let sandbox_backend = match raw.get("sandbox-backend") {
            None => "native".to_owned(),
            Some(v @ ("native" | "oci" | "none")) => v.to_owned(),
            Some(v) => {
                return Err(SettingsError::BadValue {
                    name: "sandbox-backend".into(),
                    expected: "native, oci or none",
                    value: v.into(),
                })
            }
        };
        let sandbox_paths = match raw.get("sandbox-paths") {
            Some(_) => list(&raw, "sandbox-paths", &[]),
            None => list(&raw, "build-chroot-dirs", &[]),
        };
        Ok(Self {
            trusted_users: list(&raw, "trusted-users", &["root"]),
            allowed_users: list(&raw, "allowed-users", &["*"]),
            build_users_group: raw.get("build-users-group").unwrap_or("").to_owned(),
            sandbox,
            sandbox_backend,
            sandbox_paths,
            max_jobs: number(&raw, "max-jobs", 1, Some(cpus()))?,
            cores: number(&raw, "cores", 0, None)?,
            substituters: list(&raw, "substituters", &["https://cache.nixos.org/"]),
            trusted_substituters: list(&raw, "trusted-substituters", &[]),
            trusted_public_keys: list(
                &raw,
                "trusted-public-keys",
                &["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="],
            ),
            require_sigs: boolean(&raw, "require-sigs", true)?,
            keep_outputs: boolean(&raw, "keep-outputs", false)?,
            keep_derivations: boolean(&raw, "keep-derivations", true)?,
            experimental_features: list(&raw, "experimental-features", &[]),
            raw,
        })
    }

    /// Reads the settings from `conf_dir` and `$NIX_CONFIG`.
    pub fn load(conf_dir: &Path, nix_config: Option<&str>) -> Result<Self, SettingsError> {
        Self::from_raw(RawSettings::load(conf_dir, nix_config)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_nix_defaults() {
        let s = Settings::from_raw(RawSettings::default()).unwrap();
        assert_eq!(s.trusted_users, ["root"]);
        assert_eq!(s.allowed_users, ["*"]);
        assert!(s.require_sigs && s.keep_derivations && !s.keep_outputs);
        assert_eq!(s.sandbox, "true");
        assert_eq!(s.sandbox_backend, "native");
        assert!(s.sandbox_paths.is_empty());
    }

    #[test]
    fn sandbox_backend_and_paths() {
        let raw = RawSettings::parse(
            "sandbox-backend = none\nsandbox-paths = /bin/sh=/x/busybox\nextra-sandbox-paths = /usr?\n",
            Path::new("/"),
        )
        .unwrap();
        let s = Settings::from_raw(raw).unwrap();
        assert_eq!(s.sandbox_backend, "none");
        assert_eq!(s.sandbox_paths, ["/bin/sh=/x/busybox", "/usr?"]);
        let raw = RawSettings::parse("sandbox-backend = bwrap\n", Path::new("/")).unwrap();
        assert!(matches!(Settings::from_raw(raw), Err(SettingsError::BadValue { .. })));
    }

    #[test]
    fn parses_lines_comments_and_extra() {
        let raw = RawSettings::parse(
            "# comment\ntrusted-users = root alice @wheel # trailing\n\nextra-trusted-users = bob\nsandbox = false\n",
            Path::new("/"),
        )
        .unwrap();
        let s = Settings::from_raw(raw).unwrap();
        assert_eq!(s.trusted_users, ["root", "alice", "@wheel", "bob"]);
        assert_eq!(s.sandbox, "false");
    }

    #[test]
    fn includes_are_followed_and_bang_include_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other.conf"), "keep-outputs = true\n").unwrap();
        std::fs::write(dir.path().join("nix.conf"), "include other.conf\n!include missing.conf\n").unwrap();
        let s = Settings::load(dir.path(), Some("max-jobs = 7")).unwrap();
        assert!(s.keep_outputs);
        assert_eq!(s.max_jobs, 7);
        std::fs::write(dir.path().join("nix.conf"), "include missing.conf\n").unwrap();
        assert!(matches!(Settings::load(dir.path(), None), Err(SettingsError::Io { .. })));
    }

    #[test]
    fn include_cycles_end_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nix.conf"), "include nix.conf\n").unwrap();
        assert!(matches!(Settings::load(dir.path(), None), Err(SettingsError::TooDeep(_))));
    }

    #[test]
    fn bad_lines_and_values_are_errors() {
        assert!(matches!(RawSettings::parse("just words", Path::new("/")), Err(SettingsError::Syntax(_))));
        let raw = RawSettings::parse("require-sigs = maybe", Path::new("/")).unwrap();
        assert!(matches!(Settings::from_raw(raw), Err(SettingsError::BadValue { .. })));
    }
}
