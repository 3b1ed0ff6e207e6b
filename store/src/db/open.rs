//! Opening the database: the schema file, creating a fresh database as Nix does, checking and
//! extending an existing one, and the connection settings Nix uses.
//!
//! Order for a fresh store (no `schema` file), as in Nix: create `db.sqlite` and its tables, then
//! write `schema`. A crash in between leaves a database without a `schema` file, which the next
//! open treats as fresh again; every statement is `if not exists`, so that is harmless.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::error::DbError;
use super::lock::BigLock;
use super::retry::{in_transaction, with_retry, TxnKind};
use super::schema::{
    BASE_SCHEMA, CASNIX_SCHEMA, CASNIX_SCHEMA_VERSION, CA_MIGRATION_NAME, CA_SCHEMA, NIX_CA_SCHEMA_FILE_VERSION,
    NIX_SCHEMA_VERSION, OLDEST_SUPPORTED_SCHEMA, SCHEMA_MIGRATIONS_TABLE,
};
use super::{Db, OpenMode, OpenOptions};

/// Nix's database file name.
pub(crate) const NIX_DB_FILE: &str = "db.sqlite";
/// casnix's database file name.
pub(crate) const CASNIX_DB_FILE: &str = "casnix.sqlite";
const SCHEMA_FILE: &str = "schema";
const CA_SCHEMA_FILE: &str = "ca-schema";
const BIG_LOCK_FILE: &str = "big-lock";
/// The longest schema file read (it holds a small number).
const MAX_SCHEMA_FILE_LEN: u64 = 64;
/// Nix's WAL size limit after a checkpoint: 2^40 bytes.
const JOURNAL_SIZE_LIMIT: i64 = 1 << 40;
/// Nix's auto-checkpoint interval, in pages.
const WAL_AUTOCHECKPOINT: i64 = 40000;

pub(super) fn open(options: &OpenOptions) -> Result<Db, DbError> {
    let db_dir = options.state_dir.join("db");
    match options.mode {
        OpenMode::ReadWrite => open_read_write(options, db_dir),
        OpenMode::ReadOnly => open_read_only(options, db_dir),
    }
}

fn open_read_write(options: &OpenOptions, db_dir: PathBuf) -> Result<Db, DbError> {
    std::fs::create_dir_all(&db_dir).map_err(DbError::io("creating directory", &db_dir))?;
    let big_lock = BigLock::shared(&db_dir.join(BIG_LOCK_FILE))?;
    let schema_version = read_version_file(&db_dir.join(SCHEMA_FILE))?;
    check_schema_version(schema_version)?;
    let fresh = schema_version.is_none();

    let nix_path = db_dir.join(NIX_DB_FILE);
    if !fresh && !nix_path.exists() {
        return Err(DbError::DatabaseMissing { path: db_dir });
    }
    let mut nix = open_connection(&nix_path, OpenMode::ReadWrite, options)?;
    configure_writer(&mut nix, &nix_path, options)?;
    if fresh {
        in_transaction(&mut nix, TxnKind::Write, options.busy_timeout, &nix_path, |txn| {
            txn.execute_batch(BASE_SCHEMA).map_err(DbError::sqlite("creating the schema"))
        })?;
    }
    ensure_ca_schema(&mut nix, &nix_path, options)?;
    let ca_schema_file = db_dir.join(CA_SCHEMA_FILE);
    if !ca_schema_file.exists() {
        write_version_file(&ca_schema_file, NIX_CA_SCHEMA_FILE_VERSION)?;
    }
    if fresh {
        write_version_file(&db_dir.join(SCHEMA_FILE), NIX_SCHEMA_VERSION)?;
    }

    let casnix_path = db_dir.join(CASNIX_DB_FILE);
    let mut casnix = open_connection(&casnix_path, OpenMode::ReadWrite, options)?;
    configure_writer(&mut casnix, &casnix_path, options)?;
    init_casnix(&mut casnix, &casnix_path, options)?;

    Ok(Db {
        store_dir: options.store_dir.clone(),
        db_dir,
        read_only: false,
        busy_timeout: options.busy_timeout,
        nix: Mutex::new(nix),
        casnix: Some(Mutex::new(casnix)),
        has_ca_tables: true,
        _big_lock: Some(big_lock),
    })
}

fn open_read_only(options: &OpenOptions, db_dir: PathBuf) -> Result<Db, DbError> {
    let Some(version) = read_version_file(&db_dir.join(SCHEMA_FILE))? else {
        return Err(DbError::DatabaseMissing { path: db_dir });
    };
    check_schema_version(Some(version))?;
    let nix_path = db_dir.join(NIX_DB_FILE);
    if !nix_path.exists() {
        return Err(DbError::DatabaseMissing { path: db_dir });
    }
    let mut nix = open_connection(&nix_path, OpenMode::ReadOnly, options)?;
    let has_ca_tables = with_retry(&mut nix, options.busy_timeout, &nix_path, |c| {
        Ok(table_exists(c, "Realisations")? && table_exists(c, "RealisationsRefs")?)
    })?;

    let casnix_path = db_dir.join(CASNIX_DB_FILE);
    let casnix = if casnix_path.exists() {
        let mut conn = open_connection(&casnix_path, OpenMode::ReadOnly, options)?;
        let version = with_retry(&mut conn, options.busy_timeout, &casnix_path, |c| user_version(c))?;
        check_casnix_version(&casnix_path, version)?;
        Some(Mutex::new(conn))
    } else {
        None
    };

    Ok(Db {
        store_dir: options.store_dir.clone(),
        db_dir,
        read_only: true,
        busy_timeout: options.busy_timeout,
        nix: Mutex::new(nix),
        casnix,
        has_ca_tables,
        _big_lock: None,
    })
}

fn check_schema_version(version: Option<u32>) -> Result<(), DbError> {
    match version {
        Some(found) if found > NIX_SCHEMA_VERSION => {
            Err(DbError::SchemaTooNew { found, supported: NIX_SCHEMA_VERSION })
        }
        Some(found) if found < OLDEST_SUPPORTED_SCHEMA => {
            Err(DbError::SchemaTooOld { found, needed: OLDEST_SUPPORTED_SCHEMA })
        }
        _ => Ok(()),
    }
}

/// Reads a version file (`schema`, `ca-schema`): `None` if it does not exist. Nix writes the bare
/// number; surrounding white space is tolerated.
pub(crate) fn read_version_file(path: &Path) -> Result<Option<u32>, DbError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DbError::io("reading", path)(e)),
    };
    let mut text = String::new();
    file.take(MAX_SCHEMA_FILE_LEN).read_to_string(&mut text).map_err(DbError::io("reading", path))?;
    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| DbError::SchemaFileCorrupt { path: path.to_owned() })
}

/// Writes a version file atomically: a temporary file, fsync, rename, fsync of the directory.
fn write_version_file(path: &Path, version: u32) -> Result<(), DbError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(version.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DbError::io("writing", path)(e)
    })
}

fn open_connection(path: &Path, mode: OpenMode, options: &OpenOptions) -> Result<Connection, DbError> {
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let flags = match mode {
        OpenMode::ReadWrite => base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        OpenMode::ReadOnly => base | OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(DbError::sqlite("opening the database"))?;
    conn.busy_timeout(options.busy_timeout).map_err(DbError::sqlite("setting the busy timeout"))?;
    conn.pragma_update(None, "foreign_keys", 1).map_err(DbError::sqlite("enabling foreign keys"))?;
    stable_query_plans(&conn).map_err(DbError::sqlite("configuring the query planner"))?;
    Ok(conn)
}

/// Keeps each cached statement's query plan whatever its bound values are. The bundled SQLite
/// is built with STAT4, under which a join restricted by a parameter (such as the references
/// query, `… join ValidPaths on reference = id where referrer = ?1`) is compiled again on every
/// run to pick a plan for the new value: half the time of a path-info query. The store's
/// queries have one good plan each, so planning once is enough.
pub(crate) fn stable_query_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop)
}

/// Nix's settings for a writer: fsync at "normal" level, WAL with a large auto-checkpoint
/// interval and a size limit after checkpoints.
fn configure_writer(conn: &mut Connection, path: &Path, options: &OpenOptions) -> Result<(), DbError> {
    with_retry(conn, options.busy_timeout, path, |c| {
        c.pragma_update(None, "synchronous", "normal").map_err(DbError::sqlite("setting synchronous mode"))?;
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(DbError::sqlite("querying the journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            c.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get::<_, String>(0))
                .map_err(DbError::sqlite("setting the journal mode"))?;
        }
        c.pragma_update_and_check(None, "journal_size_limit", JOURNAL_SIZE_LIMIT, |r| r.get::<_, i64>(0))
            .map_err(DbError::sqlite("setting the journal size limit"))?;
        c.pragma_update_and_check(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT, |r| r.get::<_, i64>(0))
            .map_err(DbError::sqlite("setting the checkpoint interval"))?;
        Ok(())
    })
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, DbError> {
    conn.query_row("select 1 from sqlite_master where type = 'table' and name = ?1", [name], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(DbError::sqlite("reading the schema"))
}

/// Makes sure the content-addressed-derivation tables exist and are recorded the way Nix 2.26
/// records them (`SchemaMigrations`). Writes only when something is missing.
fn ensure_ca_schema(conn: &mut Connection, path: &Path, options: &OpenOptions) -> Result<(), DbError> {
    let complete = with_retry(conn, options.busy_timeout, path, |c| {
        if !table_exists(c, "SchemaMigrations")? || !table_exists(c, "Realisations")? {
            return Ok(false);
        }
        c.query_row("select 1 from SchemaMigrations where migration = ?1", [CA_MIGRATION_NAME], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(DbError::sqlite("reading schema migrations"))
    })?;
    if complete {
        return Ok(());
    }
    in_transaction(conn, TxnKind::Write, options.busy_timeout, path, |txn| {
        txn.execute_batch(SCHEMA_MIGRATIONS_TABLE).map_err(DbError::sqlite("creating SchemaMigrations"))?;
        txn.execute_batch(CA_SCHEMA).map_err(DbError::sqlite("creating the realisation tables"))?;
        txn.execute("insert or ignore into SchemaMigrations values (?1)", [CA_MIGRATION_NAME])
            .map_err(DbError::sqlite("recording a schema migration"))?;
        Ok(())
    })
}

fn user_version(conn: &Connection) -> Result<i64, DbError> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(DbError::sqlite("reading user_version"))
}

fn check_casnix_version(path: &Path, found: i64) -> Result<(), DbError> {
    if found > CASNIX_SCHEMA_VERSION {
        return Err(DbError::CasnixSchemaTooNew { path: path.to_owned(), found, supported: CASNIX_SCHEMA_VERSION });
    }
    Ok(())
}

/// Creates casnix's tables if the file is new, and refuses a newer version.
fn init_casnix(conn: &mut Connection, path: &Path, options: &OpenOptions) -> Result<(), DbError> {
    in_transaction(conn, TxnKind::Write, options.busy_timeout, path, |txn| {
        let version = user_version(txn)?;
        check_casnix_version(path, version)?;
        if version < CASNIX_SCHEMA_VERSION {
            txn.execute_batch(CASNIX_SCHEMA).map_err(DbError::sqlite("creating casnix's tables"))?;
            txn.pragma_update(None, "user_version", CASNIX_SCHEMA_VERSION)
                .map_err(DbError::sqlite("setting user_version"))?;
        }
        Ok(())
    })
}
