//! Opening: the files of a fresh database, schema version checks, read-only mode.

use super::*;
use crate::db::schema::CA_MIGRATION_NAME;
use crate::db::{DbError, OpenOptions};

#[test]
fn fresh_database_has_nix_layout() {
    let (dir, db) = fresh();
    let db_dir = dir.path().join("db");
    assert_eq!(std::fs::read_to_string(db_dir.join("schema")).unwrap(), "10");
    assert_eq!(std::fs::read_to_string(db_dir.join("ca-schema")).unwrap(), "3");
    assert!(db_dir.join("big-lock").exists());
    assert!(db_dir.join("db.sqlite").exists());
    assert!(db_dir.join("casnix.sqlite").exists());
    let mode: String = sql_value(&db, "pragma journal_mode");
    assert_eq!(mode, "wal");
    let migrations: String = sql_value(&db, "select group_concat(migration) from SchemaMigrations");
    assert_eq!(migrations, CA_MIGRATION_NAME);
    for table in ["ValidPaths", "Refs", "DerivationOutputs", "Realisations", "RealisationsRefs"] {
        let n: i64 = sql_value(&db, &format!("select count(*) from sqlite_master where type = 'table' and name = '{table}'"));
        assert_eq!(n, 1, "{table}");
    }
    for trigger in ["DeleteSelfRefs", "DeleteSelfRefsViaRealisations"] {
        let n: i64 = sql_value(&db, &format!("select count(*) from sqlite_master where type = 'trigger' and name = '{trigger}'"));
        assert_eq!(n, 1, "{trigger}");
    }
}

#[test]
fn reopening_keeps_data_and_files() {
    let (dir, db) = fresh();
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[])], &no_drvs()).unwrap();
    drop(db);
    let db = open_rw(dir.path());
    assert!(db.is_valid(&a).unwrap());
    assert_eq!(std::fs::read_to_string(dir.path().join("db/schema")).unwrap(), "10");
}

#[test]
fn a_second_handle_sees_writes_of_the_first() {
    let (dir, db) = fresh();
    let other = open_rw(dir.path());
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[])], &no_drvs()).unwrap();
    assert!(other.is_valid(&a).unwrap());
}

#[test]
fn newer_schema_is_refused() {
    let (dir, db) = fresh();
    drop(db);
    std::fs::write(dir.path().join("db/schema"), "11").unwrap();
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, DbError::SchemaTooNew { found: 11, supported: 10 }), "{err}");
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadOnly).unwrap_err();
    assert!(matches!(err, DbError::SchemaTooNew { found: 11, .. }), "{err}");
}

#[test]
fn older_schema_is_refused() {
    let (dir, db) = fresh();
    drop(db);
    std::fs::write(dir.path().join("db/schema"), "9").unwrap();
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, DbError::SchemaTooOld { found: 9, needed: 10 }), "{err}");
}

#[test]
fn corrupt_schema_file_is_refused() {
    let (dir, db) = fresh();
    drop(db);
    std::fs::write(dir.path().join("db/schema"), "ten").unwrap();
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, DbError::SchemaFileCorrupt { .. }), "{err}");
}

#[test]
fn schema_file_without_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db/schema"), "10").unwrap();
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, DbError::DatabaseMissing { .. }), "{err}");
}

#[test]
fn existing_ca_schema_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db/ca-schema"), "4").unwrap();
    drop(open_rw(dir.path()));
    assert_eq!(std::fs::read_to_string(dir.path().join("db/ca-schema")).unwrap(), "4");
}

#[test]
fn read_only_needs_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadOnly).unwrap_err();
    assert!(matches!(err, DbError::DatabaseMissing { .. }), "{err}");
    assert!(!dir.path().join("db").exists(), "read-only open must not create anything");
}

#[test]
fn read_only_reads_and_refuses_writes() {
    let (dir, db) = fresh();
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[])], &no_drvs()).unwrap();
    db.set_castore_root(&a, &info(&a, &[]).nar_hash, b"root").unwrap();
    let ro = Db::open(dir.path(), store_dir(), OpenMode::ReadOnly).unwrap();
    assert!(ro.is_read_only());
    assert!(ro.is_valid(&a).unwrap());
    assert_eq!(ro.castore_root(&a).unwrap().as_deref(), Some(&b"root"[..]));
    let b = path("b");
    assert!(matches!(ro.register_valid_paths(&[info(&b, &[])], &no_drvs()), Err(DbError::ReadOnly)));
    assert!(matches!(ro.invalidate_paths([&a]), Err(DbError::ReadOnly)));
    assert!(matches!(ro.add_signatures(&a, &BTreeSet::new()), Err(DbError::ReadOnly)));
    assert!(matches!(ro.set_castore_root(&a, &info(&a, &[]).nar_hash, b"x"), Err(DbError::ReadOnly)));
    // Writes through the read-write handle are seen by the read-only one.
    db.register_valid_paths(&[info(&b, &[])], &no_drvs()).unwrap();
    assert!(ro.is_valid(&b).unwrap());
}

#[test]
fn read_only_without_casnix_file_has_no_roots() {
    let (dir, db) = fresh();
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[])], &no_drvs()).unwrap();
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("db/casnix.sqlite{suffix}")));
    }
    let ro = Db::open(dir.path(), store_dir(), OpenMode::ReadOnly).unwrap();
    assert_eq!(ro.castore_root(&a).unwrap(), None);
}

#[test]
fn newer_casnix_file_is_refused() {
    let (dir, db) = fresh();
    drop(db);
    let conn = rusqlite::Connection::open(dir.path().join("db/casnix.sqlite")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Db::open(dir.path(), store_dir(), OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, DbError::CasnixSchemaTooNew { found: 99, .. }), "{err}");
}

#[test]
fn options_set_mode_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::new(dir.path(), store_dir()).busy_timeout(std::time::Duration::from_secs(5));
    let db = Db::open_with(&opts).unwrap();
    assert!(!db.is_read_only());
    assert_eq!(db.db_dir(), dir.path().join("db"));
    drop(db);
    let db = Db::open_with(&opts.mode(OpenMode::ReadOnly)).unwrap();
    assert!(db.is_read_only());
}

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
}
