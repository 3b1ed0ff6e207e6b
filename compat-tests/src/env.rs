//! One scenario's directories under `/tmp` (so the Nix 2.26 client, chrooted with `/tmp` bound
//! in, sees them at the same paths): the daemon's store, state, log and configuration
//! directories and socket, the inputs a scenario writes (kept between the two daemons' runs), and
//! a scratch area per user (wiped between runs).

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::normalise::Normaliser;
use crate::user::{self, Ids};
use crate::{must, User};

/// Where Debian trixie's Nix 2.26 lives (see `setup-trixie.sh`); `CASNIX_TRIXIE_ROOT` overrides.
pub fn trixie_root() -> PathBuf {
    std::env::var_os("CASNIX_TRIXIE_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/trixie"))
}

/// The base `nix.conf` of both daemons.
const DAEMON_CONF: &str = "substituters =\nsandbox = false\nbuild-users-group =\ntrusted-users = root\n\
experimental-features = nix-command\n";

/// The clients' `nix.conf`.
const CLIENT_CONF: &str = "experimental-features = nix-command\n";

/// A scenario's root directory and its layout (removed on drop).
#[derive(Debug)]
pub struct Env {
    dir: tempfile::TempDir,
    untrusted: Ids,
    keys: OnceLock<(PathBuf, String)>,
}

impl Env {
    /// Creates the directories, with `extra_conf` appended to the daemons' `nix.conf`.
    pub fn new(extra_conf: &str) -> Self {
        let dir = must(tempfile::Builder::new().prefix("casnix-compat-").tempdir_in("/tmp"), "temporary directory");
        let untrusted = user::untrusted(&trixie_root());
        let env = Self { dir, untrusted, keys: OnceLock::new() };
        set_mode(env.root(), 0o755);
        for sub in ["conf", "client-conf", "inputs", "keys", "logs"] {
            make_dir(&env.path(sub), 0o755);
        }
        must(fs::write(env.path("conf/nix.conf"), format!("{DAEMON_CONF}{extra_conf}")), "daemon nix.conf");
        must(fs::write(env.path("client-conf/nix.conf"), CLIENT_CONF), "client nix.conf");
        env.reset();
        env
    }

    /// Appends lines to the daemons' `nix.conf` (for the daemon started next).
    pub fn append_conf(&self, lines: &str) {
        if lines.is_empty() {
            return;
        }
        let path = self.path("conf/nix.conf");
        let mut text = must(fs::read_to_string(&path), "daemon nix.conf");
        text.push_str(lines);
        must(fs::write(&path, text), "daemon nix.conf");
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path under the root.
    pub fn path(&self, sub: &str) -> PathBuf {
        self.root().join(sub)
    }

    /// The store directory (the same for both daemons).
    pub fn store_dir(&self) -> PathBuf {
        self.path("store")
    }

    /// The daemons' socket.
    pub fn socket(&self) -> PathBuf {
        self.path("socket/socket")
    }

    /// The untrusted user's ids.
    pub fn untrusted_ids(&self) -> Ids {
        self.untrusted
    }

    /// A normaliser for this root.
    pub fn normaliser(&self) -> Normaliser {
        Normaliser::new(&self.root().to_string_lossy())
    }

    /// `user`'s home directory (in the scratch area: Nix 2.26 caches binary cache lookups there).
    pub fn home(&self, user: User) -> PathBuf {
        self.path(match user {
            User::Root => "scratch/home-root",
            User::Untrusted => "scratch/home-untrusted",
        })
    }

    /// A directory `user` can write to, emptied between the daemons' runs.
    pub fn work(&self, user: User) -> PathBuf {
        self.path(match user {
            User::Root => "scratch/work-root",
            User::Untrusted => "scratch/work-untrusted",
        })
    }

    /// Removes everything the previous daemon and its clients wrote (store, state, logs, socket,
    /// scratch) and recreates the empty directories. Inputs and keys stay.
    pub fn reset(&self) {
        for sub in ["store", "state", "log", "socket", "scratch"] {
            remove_tree(&self.path(sub));
        }
        for sub in ["log", "socket", "scratch"] {
            make_dir(&self.path(sub), 0o755);
        }
        for user in [User::Root, User::Untrusted] {
            for dir in [self.home(user), self.work(user)] {
                make_dir(&dir, 0o755);
                if user == User::Untrusted {
                    must(chown(&dir, Some(self.untrusted.uid), Some(self.untrusted.gid)), "chown scratch");
                }
            }
        }
    }

    /// Writes an input file (world-readable; `executable` sets 0755), creating parent
    /// directories, and returns its path.
    pub fn write_input(&self, name: &str, contents: &[u8], executable: bool) -> PathBuf {
        let path = self.path("inputs").join(name);
        if let Some(parent) = path.parent() {
            must(fs::create_dir_all(parent), "input directory");
        }
        must(fs::write(&path, contents), "write input");
        set_mode(&path, if executable { 0o755 } else { 0o644 });
        path
    }

    /// Creates a symlink among the inputs and returns its path.
    pub fn write_input_symlink(&self, name: &str, target: &str) -> PathBuf {
        let path = self.path("inputs").join(name);
        if let Some(parent) = path.parent() {
            must(fs::create_dir_all(parent), "input directory");
        }
        let _ = fs::remove_file(&path);
        must(std::os::unix::fs::symlink(target, &path), "input symlink");
        path
    }

    /// A signing key pair made once per environment with `nix key generate-secret` (so both
    /// daemons' runs sign with the same key): the secret key file and the public key.
    pub fn key_pair(&self) -> (PathBuf, String) {
        self.keys
            .get_or_init(|| {
                let secret = self.path("keys/secret");
                let generated = must(
                    Command::new("nix")
                        .args(["--extra-experimental-features", "nix-command", "key", "generate-secret", "--key-name"])
                        .arg("compat-test-1")
                        .env("NIX_CONF_DIR", self.path("client-conf"))
                        .output(),
                    "nix key generate-secret",
                );
                assert!(generated.status.success(), "nix key generate-secret: {}", String::from_utf8_lossy(&generated.stderr));
                must(fs::write(&secret, &generated.stdout), "write secret key");
                set_mode(&secret, 0o644);
                let public = must(
                    Command::new("nix")
                        .args(["--extra-experimental-features", "nix-command", "key", "convert-secret-to-public"])
                        .env("NIX_CONF_DIR", self.path("client-conf"))
                        .stdin(must(fs::File::open(&secret), "open secret key"))
                        .output(),
                    "nix key convert-secret-to-public",
                );
                assert!(public.status.success(), "convert-secret-to-public: {}", String::from_utf8_lossy(&public.stderr));
                (secret, String::from_utf8_lossy(&public.stdout).trim().to_owned())
            })
            .clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Store trees are read-only: make them writable so the temporary directory goes.
        remove_tree(&self.path("store"));
        remove_tree(&self.path("scratch"));
    }
}

/// Creates a directory (and parents) with `mode`.
fn make_dir(path: &Path, mode: u32) {
    must(fs::create_dir_all(path), "create directory");
    set_mode(path, mode);
}

fn set_mode(path: &Path, mode: u32) {
    must(fs::set_permissions(path, fs::Permissions::from_mode(mode)), "chmod");
}

/// Removes a tree whose directories may be read-only (store paths).
pub(crate) fn remove_tree(path: &Path) {
    if fs::symlink_metadata(path).is_err() {
        return;
    }
    make_writable(path);
    must(fs::remove_dir_all(path), "remove directory tree");
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}
