//! The castore's SQLite database: one file holding the directory table and the chunk index.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::durability::Durability;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS directories (
    digest   BLOB PRIMARY KEY NOT NULL,  -- BLAKE3 of encoding (32 bytes)
    size     INTEGER NOT NULL,           -- nodes below the directory
    encoding BLOB NOT NULL               -- canonical encoding
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    blob   BLOB PRIMARY KEY NOT NULL,    -- BLAKE3 of the blob (32 bytes)
    chunks BLOB NOT NULL                 -- encoded chunk list
) WITHOUT ROWID;
";

/// Errors of the database: SQLite's, or a schema this code does not know.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// SQLite failed.
    #[error("castore database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer castore.
    #[error("castore database has schema version {found}, newer than the supported {SCHEMA_VERSION}")]
    UnknownSchema {
        /// The version found.
        found: i64,
    },
}

/// Opens (creating if needed) the database at `path`: WAL journal, a busy timeout for other
/// processes, and with [`Durability::Synced`] a full sync on commit (a committed transaction
/// survives power loss; otherwise the database stays consistent but may lose its last commits).
pub fn open(path: &Path, durability: Durability) -> Result<Connection, DatabaseError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    // One plan per cached statement, whatever its bound values (the bundled SQLite's STAT4
    // otherwise compiles some parameterised joins again on every run).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Synced => "FULL",
        Durability::Unsynced => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(DatabaseError::UnknownSchema { found: version });
    }
    if version < SCHEMA_VERSION {
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    Ok(conn)
}
