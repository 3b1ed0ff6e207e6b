//! An isolated local Nix store for the interoperability tests, driven by the installed Nix (2.8
//! here; `scripts/test-all.sh` installs it) and by our `Db`.

#![allow(dead_code)] // Each test file uses a different part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};
use store::db::{Db, OpenMode};
use tempfile::TempDir;

/// A temporary root with `store/`, `state/`, `log/`, `conf/nix.conf` and a home directory.
pub struct NixStore {
    pub root: TempDir,
}

impl NixStore {
    /// A fresh root whose `nix.conf` enables `features` (besides `nix-command`).
    pub fn new(features: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        for dir in ["store", "state", "log", "conf", "home"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let s = Self { root };
        s.set_features(features);
        s
    }

    /// Rewrites `nix.conf` with another feature list.
    pub fn set_features(&self, features: &str) {
        std::fs::write(
            self.root.path().join("conf/nix.conf"),
            format!(
                "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command {features}\n"
            ),
        )
        .unwrap();
    }

    pub fn store_path_dir(&self) -> PathBuf {
        self.root.path().join("store")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    pub fn store_dir(&self) -> StoreDir {
        StoreDir::new(self.store_path_dir().to_str().unwrap())
    }

    /// A Nix command with only this store's environment.
    pub fn cmd(&self, program: &str) -> Command {
        let r = self.root.path();
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", r.join("home"))
            .env("XDG_CACHE_HOME", r.join("home/.cache"))
            .env("NIX_STORE_DIR", r.join("store"))
            .env("NIX_STATE_DIR", r.join("state"))
            .env("NIX_LOG_DIR", r.join("log"))
            .env("NIX_CONF_DIR", r.join("conf"))
            .env("NIX_REMOTE", "local");
        c
    }

    /// Runs a Nix command, which must succeed; returns its output.
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test-all.sh installs nix-bin): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// Runs a Nix command, which must succeed; returns its standard output as text.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8(self.output(program, args).stdout).unwrap()
    }

    /// The lines `nix-store -q <flag> <path>` prints.
    pub fn query(&self, flag: &str, path: &str) -> BTreeSet<String> {
        self.run("nix-store", &["-q", flag, path]).lines().map(str::to_owned).collect()
    }

    pub fn open_db(&self, mode: OpenMode) -> Db {
        Db::open(&self.state_dir(), self.store_dir(), mode).unwrap()
    }

    /// Every path info as `nix path-info --json --all` reports it.
    pub fn nix_path_infos(&self) -> BTreeMap<StorePath, ValidPathInfo> {
        let text = self.run("nix", &["path-info", "--json", "--all"]);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sd = self.store_dir();
        json.as_array()
            .unwrap()
            .iter()
            .map(|obj| {
                let path = sd.parse(obj["path"].as_str().unwrap()).unwrap();
                (path.clone(), ValidPathInfo::from_json(&sd, path, obj).unwrap())
            })
            .collect()
    }

    /// The schema text of Nix's database (every `sqlite_master` row), to see that nothing changed.
    pub fn schema_rows(&self) -> Vec<(String, String, Option<String>)> {
        let conn = rusqlite::Connection::open(self.state_dir().join("db/db.sqlite")).unwrap();
        let mut stmt = conn.prepare("select type, name, sql from sqlite_master order by type, name").unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }
}

/// What `nix-store --dump-db` prints for `paths`, made from our database (Nix's
/// `makeValidityRegistration` with derivers and hashes).
pub fn dump_db(db: &Db, paths: &BTreeSet<StorePath>) -> String {
    let sd = db.store_dir();
    let mut out = String::new();
    for p in paths {
        let info = db.query_path_info(p).unwrap().unwrap();
        out += &format!("{}\n{}\n{}\n", sd.print(p), info.nar_hash.to_base16(), info.nar_size);
        out += &format!("{}\n", info.deriver.as_ref().map(|d| sd.print(d)).unwrap_or_default());
        out += &format!("{}\n", info.references.len());
        for r in &info.references {
            out += &format!("{}\n", sd.print(r));
        }
    }
    out
}

/// Full paths of a set of store paths.
pub fn printed(sd: &StoreDir, paths: &BTreeSet<StorePath>) -> BTreeSet<String> {
    paths.iter().map(|p| sd.print(p)).collect()
}

/// Writes `path` in the store directory from a closure that creates it at the given location.
pub fn store_file(store: &Path, path: &StorePath) -> PathBuf {
    store.join(path.to_string())
}
