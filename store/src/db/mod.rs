//! The path-info database: Nix's SQLite store database (schema version 10), kept compatible, and
//! casnix's own data file beside it.
//!
//! # Files (all under `$NIX_STATE_DIR/db/`)
//! - `db.sqlite`: Nix's database: `ValidPaths`, `Refs`, `DerivationOutputs`, and the
//!   content-addressed-derivation tables `Realisations` and `RealisationsRefs`; WAL mode.
//! - `schema`: the text `10`, written after the database is created (as Nix does).
//! - `ca-schema`: `3` when missing, for Nix 2.6–2.24 (see [`schema::NIX_CA_SCHEMA_FILE_VERSION`]).
//! - `big-lock`: held shared (`flock`) by every writer for as long as it has the database open,
//!   as Nix does; Nix takes it exclusively only to migrate old schemas.
//! - `casnix.sqlite`: casnix's own data (castore roots), never read by Nix.
//!
//! # Consistency between the two files
//! SQLite makes each file's transactions atomic, but not the pair. The rule that keeps them
//! consistent: a castore root is recorded *with the NAR hash it renders to*, in `casnix.sqlite`,
//! *before* the path is registered in Nix's database; and it is only ever trusted when Nix's
//! database says the path is valid *with that same NAR hash* ([`Db::castore_root`] checks both).
//! So a crash between the two writes leaves a root for a path that is not valid, which nothing
//! reads and [`Db::reconcile_castore_roots`] deletes; invalidation deletes the Nix row first and
//! the root afterwards, with the same outcome. A path that Nix itself added or replaced while
//! casnix was stopped has no root, or a root for another NAR hash, which is ignored: the caller
//! re-ingests such a path from the store directory.
//!
//! # Concurrency
//! Several processes (casnix, Nix) may use the same database. Writes run in `BEGIN IMMEDIATE`
//! transactions; SQLite's busy timeout waits for other writers, and a transaction that still
//! fails with "busy" is retried after a short random sleep until the configured timeout
//! (default: one hour, as Nix). Each [`Db`] holds one connection per file behind a mutex, so it
//! can be shared between threads; open several for parallel readers.

mod casnix_data;
mod closure;
mod encode;
mod error;
mod lock;
mod open;
mod queries;
mod realisations;
mod registration;
mod retry;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix_formats::store_path::StoreDir;
use rusqlite::Connection;

pub use casnix_data::{CastoreRoot, MAX_CASTORE_ROOT_LEN};
pub use closure::{topo_sort, ClosureOptions, TopoCycle};
pub use error::DbError;

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the database if there is none, take the big lock, allow writes.
    ReadWrite,
    /// Open an existing database for reading only: no lock, no schema changes, writes fail with
    /// [`DbError::ReadOnly`].
    ReadOnly,
}

/// Everything [`Db::open_with`] needs.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `$NIX_STATE_DIR`, such as `/nix/var/nix`; the files live in its `db` subdirectory.
    pub state_dir: PathBuf,
    /// The logical store directory (`$NIX_STORE_DIR`), with which paths are stored.
    pub store_dir: StoreDir,
    /// Read-write or read-only.
    pub mode: OpenMode,
    /// How long to wait for other writers before failing with [`DbError::Busy`].
    pub busy_timeout: Duration,
}

/// Nix's busy timeout: one hour.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60 * 60);

impl OpenOptions {
    /// Read-write options with the default busy timeout.
    pub fn new(state_dir: impl Into<PathBuf>, store_dir: StoreDir) -> Self {
        Self { state_dir: state_dir.into(), store_dir, mode: OpenMode::ReadWrite, busy_timeout: DEFAULT_BUSY_TIMEOUT }
    }

    /// The same options with `mode`.
    pub fn mode(mut self, mode: OpenMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same options with another busy timeout.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}

/// An open path-info database: Nix's `db.sqlite` and casnix's `casnix.sqlite`.
///
/// Queries and writes are methods: see the `queries`, `registration`, `realisations` and
/// `casnix_data` parts of this module. `Db` is `Send + Sync`.
#[derive(Debug)]
pub struct Db {
    store_dir: StoreDir,
    db_dir: PathBuf,
    read_only: bool,
    busy_timeout: Duration,
    nix: Mutex<Connection>,
    /// `None` only when opened read-only and the file does not exist.
    casnix: Option<Mutex<Connection>>,
    has_ca_tables: bool,
    /// Held (shared) for the lifetime of a read-write `Db`.
    _big_lock: Option<lock::BigLock>,
}

impl Db {
    /// Opens (or, read-write, creates) the database in `state_dir/db` for the store `store_dir`.
    pub fn open(state_dir: &Path, store_dir: StoreDir, mode: OpenMode) -> Result<Self, DbError> {
        Self::open_with(&OpenOptions::new(state_dir, store_dir).mode(mode))
    }

    /// Opens the database as `options` say.
    pub fn open_with(options: &OpenOptions) -> Result<Self, DbError> {
        open::open(options)
    }

    /// The store directory paths are printed with.
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// The database directory (`$NIX_STATE_DIR/db`).
    pub fn db_dir(&self) -> &Path {
        &self.db_dir
    }

    /// Whether the database was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The path of Nix's database file.
    pub fn nix_db_path(&self) -> PathBuf {
        self.db_dir.join(open::NIX_DB_FILE)
    }

    /// The path of casnix's own database file.
    pub fn casnix_db_path(&self) -> PathBuf {
        self.db_dir.join(open::CASNIX_DB_FILE)
    }

    fn nix_conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no transaction open (rusqlite rolls back on drop).
        self.nix.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `body` in a read transaction (one consistent snapshot) on Nix's database.
    fn read<T>(&self, body: impl FnMut(&rusqlite::Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.nix_conn();
        retry::in_transaction(&mut conn, retry::TxnKind::Read, self.busy_timeout, &self.nix_db_path(), body)
    }

    /// Runs `body` in a write transaction on Nix's database and commits it.
    fn write<T>(&self, body: impl FnMut(&rusqlite::Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        self.require_writable()?;
        let mut conn = self.nix_conn();
        retry::in_transaction(&mut conn, retry::TxnKind::Write, self.busy_timeout, &self.nix_db_path(), body)
    }

    fn require_writable(&self) -> Result<(), DbError> {
        if self.read_only {
            Err(DbError::ReadOnly)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
