//! The local store: Nix's store directory and database, with contents kept in a castore.
//!
//! # Layout
//! - `store_dir` (logical, such as `/nix/store`) and `real_store_dir` (where it is on disk, the
//!   same by default): every valid path is a materialised tree whose files are hardlinks into the
//!   castore's blob pool, canonical like Nix's (files 0444/0555, directories 0555, mtime 1).
//! - `state_dir` (`$NIX_STATE_DIR`): `db/` (Nix's database and `casnix.sqlite`, see
//!   [`crate::db`]), `gcroots/`, `profiles/`, `temproots/`, as Nix creates them.
//! - The castore (blob pool and directory database): by default `<state_dir>/casnix/castore`.
//!   It cannot live inside the store directory: Nix's garbage collector deletes every entry of
//!   the store directory that is not a valid store path, except its own `.links` (Nix 2.26,
//!   `gc.cc`). In Nix's usual layout `/nix/store` and `/nix/var` are on one file system, so the
//!   pool can be hardlinked from; elsewhere castore copies files instead (`EXDEV`).
//!
//! # Adding a path
//! Every add follows one order, so that a crash at any instant leaves either nothing valid or a
//! complete valid path:
//! 1. take the path's lock (`<real path>.lock`, Nix's `PathLocks` convention) and check again
//!    that the path is not valid;
//! 2. ingest the contents into the castore (blobs flushed, directories stored) and verify the NAR
//!    hash, size and content address;
//! 3. materialise the tree beside the path, sync it, rename it into place and sync the store
//!    directory; if something is at the path already (an earlier add that died before
//!    registering, contents being repaired, a builder's tree), the rename is an atomic exchange
//!    and the old tree is deleted afterwards, so a valid path is never missing or partial;
//! 4. record the castore root, then register the path (and its references) in one transaction.
//!
//! Before all this the path becomes a temporary root of the process or of the `Store`
//! (`temp_roots`, see [`TempRootsScope`]), so no collector deletes it meanwhile.
//!
//! Submodules: [`error`], [`path_lock`], `add` (adding), `read` (queries and NARs), `verify`
//! (verification, repair, deletion), `export` and [`export_format`] (Nix's export format),
//! `layout` (creating directories).

mod add;
mod add_ca;
mod adopt;
mod hashing_reader;
mod modulo_hash;
pub mod error;
mod export;
pub mod export_format;
mod layout;
pub(crate) mod leftovers;
pub mod path_lock;
mod read;
mod register_outputs;
mod root_encoding;
mod temp_roots;
mod unshare;
mod verify;

use std::path::{Path, PathBuf};

use castore::{Castore, CastoreConfig, Durability};
use nix_formats::store_path::{StoreDir, StorePath};

use crate::db::{Db, OpenMode};

pub use add::NarToAdd;
pub use error::{Mismatch, StoreError};
pub use modulo_hash::ModuloHasher;
pub use path_lock::{PathLock, PoolLock};
pub use register_outputs::BuiltOutput;
pub use temp_roots::TempRootsScope;
pub use verify::{PathProblem, VerifyReport};

/// Where a [`Store`] lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The logical store directory, with which paths are printed and hashed (`/nix/store`).
    pub store_dir: String,
    /// Where the store directory is on disk; `None` means `store_dir`.
    pub real_store_dir: Option<PathBuf>,
    /// `$NIX_STATE_DIR` (`/nix/var/nix`).
    pub state_dir: PathBuf,
    /// The castore's directory; `None` means `<state_dir>/casnix/castore` (see the module
    /// documentation for why not inside the store directory).
    pub castore_root: Option<PathBuf>,
    /// Whether contents and directories are synced to stable storage. Only scratch stores (tests)
    /// should turn this off.
    pub durability: Durability,
    /// Whose temporary roots file this `Store` writes: the process's (Nix's way, the default) or
    /// its own (a daemon's per-connection `Store`).
    pub temp_roots: TempRootsScope,
}

impl StoreConfig {
    /// A configuration with the defaults for everything but the two directories.
    pub fn new(store_dir: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            store_dir: store_dir.into(),
            real_store_dir: None,
            state_dir: state_dir.into(),
            castore_root: None,
            durability: Durability::Synced,
            temp_roots: TempRootsScope::Process,
        }
    }

    /// The store directory on disk.
    pub fn real_store_dir(&self) -> PathBuf {
        self.real_store_dir.clone().unwrap_or_else(|| PathBuf::from(&self.store_dir))
    }

    /// The castore's directory.
    pub fn castore_root(&self) -> PathBuf {
        self.castore_root.clone().unwrap_or_else(|| self.state_dir.join("casnix").join("castore"))
    }
}

/// What [`Store::recover`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Names removed from the store directory.
    pub leftovers: std::collections::BTreeSet<String>,
    /// Castore roots deleted because Nix's database does not back them.
    pub castore_roots: usize,
}

/// A local Nix store on castore. Shareable between threads; several processes may open the
/// same store (they coordinate through path locks and SQLite).
#[derive(Debug)]
pub struct Store {
    store_dir: StoreDir,
    real_store_dir: PathBuf,
    state_dir: PathBuf,
    db: Db,
    castore: Castore,
    temp_roots: std::sync::Arc<temp_roots::TempRoots>,
}

impl Store {
    /// Opens the store, creating its directories and database on a fresh root. Opening is
    /// cheap (no scan of the store): a daemon opens one `Store` per connection. Cleaning up
    /// after interrupted processes is [`Store::recover`]'s job.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let real_store_dir = config.real_store_dir();
        layout::create(&real_store_dir, &config.state_dir)?;
        let casnix_dir = config.state_dir.join("casnix");
        std::fs::create_dir_all(&casnix_dir).map_err(StoreError::io("creating directory", &casnix_dir))?;
        let store_dir = StoreDir::new(&config.store_dir);
        let db = Db::open(&config.state_dir, store_dir.clone(), OpenMode::ReadWrite)?;
        let mut castore_config = CastoreConfig::new(config.castore_root());
        castore_config.durability = config.durability;
        let castore = Castore::open_with(castore_config)?;
        let temp_roots = temp_roots::TempRoots::for_scope(config.temp_roots, &config.state_dir);
        Ok(Self { store_dir, real_store_dir, state_dir: config.state_dir.clone(), db, castore, temp_roots })
    }

    /// Cleans up after processes that died while changing the store: removes leftovers of
    /// interrupted adds from the store directory ([`Store::remove_leftovers`]: only those whose
    /// path lock is free) and deletes castore roots that Nix's database does not back
    /// ([`crate::db::Db::reconcile_castore_roots`]). It reads the whole store directory and the
    /// castore roots table, so it costs time proportional to the store's size: call it once when
    /// a daemon starts, and in command-line tools that open the store locally, not per
    /// connection.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        let leftovers = self.remove_leftovers()?;
        let castore_roots = self.db.reconcile_castore_roots()?;
        Ok(Recovered { leftovers, castore_roots })
    }

    /// The logical store directory.
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// The store directory on disk.
    pub fn real_store_dir(&self) -> &Path {
        &self.real_store_dir
    }

    /// `$NIX_STATE_DIR`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The path-info database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The castore holding the contents.
    pub fn castore(&self) -> &Castore {
        &self.castore
    }

    /// Where `path` is on disk.
    pub fn real_path(&self, path: &StorePath) -> PathBuf {
        self.real_store_dir.join(path.to_string())
    }

    /// Makes `path` a temporary root, in Nix's format (`temproots/<pid>`, or `<pid>-<n>` for
    /// [`TempRootsScope::Own`]; and the collector's socket while one runs), so no garbage
    /// collector deletes it while this process (or, for `Own`, this `Store`) lives. Every add
    /// does this for its paths; a daemon does it for paths a client asks it to root.
    pub fn add_temp_root(&self, path: &StorePath) -> Result<(), StoreError> {
        self.temp_roots.add(&self.print(path))
    }

    /// Takes the pool lock (see [`PoolLock`]).
    pub fn pool_lock(&self, exclusive: bool) -> Result<PoolLock, StoreError> {
        PoolLock::acquire(&self.state_dir.join("casnix").join("pool.lock"), exclusive)
    }

    /// `path` printed with the logical store directory.
    pub fn print(&self, path: &StorePath) -> String {
        self.store_dir.print(path)
    }
}
