//! Where the daemon's store, state, logs, configuration and socket are: Nix's environment
//! variables and defaults, then the command line (`--store-dir`, `--state-dir`, `--socket`,
//! `--store`).

use std::path::{Path, PathBuf};

/// An error in a store URL.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The URL names a kind of store casnix-daemon cannot serve.
    #[error("don't know how to open Nix store with URL '{0}'")]
    Unsupported(String),
    /// A parameter is not one casnix-daemon knows.
    #[error("store URL '{url}' has an unknown parameter '{param}'")]
    UnknownParam {
        /// The URL.
        url: String,
        /// The parameter.
        param: String,
    },
}

/// The daemon's directories and socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The logical store directory (`NIX_STORE_DIR`, `/nix/store`).
    pub store_dir: String,
    /// Where the store directory is on disk, when not at `store_dir` (a chroot store).
    pub real_store_dir: Option<PathBuf>,
    /// `NIX_STATE_DIR` (`/nix/var/nix`).
    pub state_dir: PathBuf,
    /// `NIX_LOG_DIR` (`/nix/var/log/nix`).
    pub log_dir: PathBuf,
    /// `NIX_CONF_DIR` (`/etc/nix`).
    pub conf_dir: PathBuf,
    /// `NIX_DAEMON_SOCKET_PATH` (`<state_dir>/daemon-socket/socket`).
    pub socket: PathBuf,
}

/// What the daemon serves: its own local store, or another daemon's socket (proxied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The local store at [`Locations`].
    Local,
    /// Forward every connection to this daemon socket.
    Proxy(PathBuf),
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Locations {
    /// Nix's environment variables, with Nix's defaults.
    pub fn from_env() -> Self {
        let store_dir = env_nonempty("NIX_STORE_DIR").unwrap_or_else(|| "/nix/store".to_owned());
        let state_dir = PathBuf::from(env_nonempty("NIX_STATE_DIR").unwrap_or_else(|| "/nix/var/nix".to_owned()));
        let log_dir = PathBuf::from(env_nonempty("NIX_LOG_DIR").unwrap_or_else(|| "/nix/var/log/nix".to_owned()));
        let conf_dir = PathBuf::from(env_nonempty("NIX_CONF_DIR").unwrap_or_else(|| "/etc/nix".to_owned()));
        let socket = env_nonempty("NIX_DAEMON_SOCKET_PATH")
            .map_or_else(|| state_dir.join("daemon-socket").join("socket"), PathBuf::from);
        Self { store_dir, real_store_dir: None, state_dir, log_dir, conf_dir, socket }
    }

    /// Applies a store URL (`--store`, else `NIX_REMOTE`): `""`, `local`, `auto` keep the
    /// defaults; `/root` or `local?root=/root` is a chroot store below `/root`; `local?store=…
    /// &state=…&log=…&real=…` set single directories; `daemon` and `unix://PATH` are proxied.
    pub fn apply_store_url(&mut self, url: &str) -> Result<Backend, LocationError> {
        if url.is_empty() || url == "local" || url == "auto" {
            return Ok(Backend::Local);
        }
        if url == "daemon" {
            return Ok(Backend::Proxy(self.socket.clone()));
        }
        if let Some(path) = url.strip_prefix("unix://") {
            let path = path.split('?').next().unwrap_or(path);
            return Ok(Backend::Proxy(PathBuf::from(path)));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let base = base.strip_prefix("file://").unwrap_or(base);
        if base.starts_with('/') {
            self.set_root(Path::new(base));
        } else if base != "local" {
            return Err(LocationError::Unsupported(url.to_owned()));
        }
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key {
                "root" => self.set_root(Path::new(value)),
                "store" => self.store_dir = value.to_owned(),
                "state" => self.state_dir = PathBuf::from(value),
                "log" => self.log_dir = PathBuf::from(value),
                "real" => self.real_store_dir = Some(PathBuf::from(value)),
                // Settings of Nix's local store that change nothing here.
                "trusted" | "priority" | "want-mass-query" | "require-sigs" | "read-only" | "system-features" => {}
                _ => return Err(LocationError::UnknownParam { url: url.to_owned(), param: key.to_owned() }),
            }
        }
        Ok(Backend::Local)
    }

    /// A chroot store: everything below `root`, paths still printed with the store directory.
    fn set_root(&mut self, root: &Path) {
        let inside = |p: &str| root.join(p.trim_start_matches('/'));
        self.real_store_dir = Some(inside(&self.store_dir));
        self.state_dir = inside("nix/var/nix");
        self.log_dir = inside("nix/var/log/nix");
    }

    /// The store configuration for these locations.
    pub fn store_config(&self) -> store::StoreConfig {
        let mut config = store::StoreConfig::new(self.store_dir.clone(), self.state_dir.clone());
        config.real_store_dir = self.real_store_dir.clone();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Locations {
        Locations {
            store_dir: "/nix/store".into(),
            real_store_dir: None,
            state_dir: "/nix/var/nix".into(),
            log_dir: "/nix/var/log/nix".into(),
            conf_dir: "/etc/nix".into(),
            socket: "/nix/var/nix/daemon-socket/socket".into(),
        }
    }

    #[test]
    fn store_urls() {
        let mut l = base();
        assert_eq!(l.apply_store_url("local").unwrap(), Backend::Local);
        assert_eq!(l, base());
        assert_eq!(l.apply_store_url("daemon").unwrap(), Backend::Proxy("/nix/var/nix/daemon-socket/socket".into()));
        assert_eq!(l.apply_store_url("unix:///tmp/s?x=1").unwrap(), Backend::Proxy("/tmp/s".into()));
        l.apply_store_url("/tmp/root").unwrap();
        assert_eq!(l.real_store_dir.as_deref(), Some(Path::new("/tmp/root/nix/store")));
        assert_eq!(l.state_dir, Path::new("/tmp/root/nix/var/nix"));
        assert_eq!(l.store_dir, "/nix/store");
        let mut l = base();
        l.apply_store_url("local?store=/s&state=/st&log=/l").unwrap();
        assert_eq!((l.store_dir.as_str(), l.state_dir.to_str(), l.log_dir.to_str()), ("/s", Some("/st"), Some("/l")));
        assert!(matches!(base().apply_store_url("https://cache.nixos.org"), Err(LocationError::Unsupported(_))));
        assert!(matches!(base().apply_store_url("local?bogus=1"), Err(LocationError::UnknownParam { .. })));
    }
}
