//! The schema we create is Nix's: every table's columns, keys, foreign keys and indexes equal
//! those of a database Nix 2.8 creates (with `ca-derivations`, so that its realisation tables
//! exist too), and the triggers do the same. Nix 2.26 adds one trigger and one index to the
//! realisation schema; we have them, and they are the only differences.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::NixStore;
use rusqlite::Connection;
use store::db::OpenMode;

/// A column: name, type, not null, default, primary key position.
type Column = (String, String, bool, Option<String>, i64);
/// A foreign key: column, parent table, parent column, on update, on delete.
type ForeignKey = (String, String, String, String, String);

/// Everything SQLite knows about a schema, in comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    /// table → columns
    columns: BTreeMap<String, Vec<Column>>,
    /// table → foreign keys
    foreign_keys: BTreeMap<String, Vec<ForeignKey>>,
    /// index → (table, unique, columns)
    indexes: BTreeMap<String, (String, bool, Vec<String>)>,
    /// trigger → its SQL without comments and with white space collapsed
    triggers: BTreeMap<String, String>,
}

fn rows<T>(conn: &Connection, sql: &str, f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Vec<T> {
    let mut stmt = conn.prepare(sql).unwrap();
    let mapped = stmt.query_map([], f).unwrap();
    mapped.collect::<Result<_, _>>().unwrap()
}

fn normalise_sql(sql: &str) -> String {
    let without_comments: Vec<&str> = sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect();
    without_comments.join(" ").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn shape(db_file: &Path) -> Shape {
    let conn = Connection::open(db_file).unwrap();
    let tables: Vec<String> = rows(
        &conn,
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name != 'SchemaMigrations'",
        |r| r.get(0),
    );
    let mut s = Shape {
        columns: BTreeMap::new(),
        foreign_keys: BTreeMap::new(),
        indexes: BTreeMap::new(),
        triggers: BTreeMap::new(),
    };
    for t in &tables {
        let cols = rows(&conn, &format!("pragma table_info({t})"), |r| {
            Ok((r.get(1)?, r.get::<_, String>(2)?.to_lowercase(), r.get(3)?, r.get(4)?, r.get(5)?))
        });
        s.columns.insert(t.clone(), cols);
        let mut fks = rows(&conn, &format!("pragma foreign_key_list({t})"), |r| {
            Ok((r.get(3)?, r.get(2)?, r.get(4)?, r.get(5)?, r.get(6)?))
        });
        fks.sort();
        s.foreign_keys.insert(t.clone(), fks);
        let indexes: Vec<(String, bool)> =
            rows(&conn, &format!("pragma index_list({t})"), |r| Ok((r.get(1)?, r.get(2)?)));
        for (name, unique) in indexes {
            let cols: Vec<String> = rows(&conn, &format!("pragma index_info({name})"), |r| r.get(2));
            // Automatic indexes get names from the table's declaration order, which both share.
            s.indexes.insert(name, (t.clone(), unique, cols));
        }
    }
    for (name, sql) in rows(&conn, "select name, sql from sqlite_master where type = 'trigger'", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    }) {
        s.triggers.insert(name, normalise_sql(&sql));
    }
    s
}

#[test]
fn our_schema_is_nix_schema() {
    let by_nix = NixStore::new("ca-derivations");
    let file = by_nix.root.path().join("f");
    std::fs::write(&file, "x").unwrap();
    by_nix.run("nix-store", &["--add", file.to_str().unwrap()]);
    let theirs = shape(&by_nix.state_dir().join("db/db.sqlite"));
    assert!(theirs.columns.contains_key("Realisations"), "Nix should have made the realisation tables");

    let by_us = NixStore::new("");
    drop(by_us.open_db(OpenMode::ReadWrite));
    let mut ours = shape(&by_us.state_dir().join("db/db.sqlite"));

    // Nix 2.26's additions, which Nix 2.8 lacks.
    let extra_trigger = ours.triggers.remove("DeleteSelfRefsViaRealisations").unwrap();
    assert!(extra_trigger.contains("delete from realisationsrefs where realisationreference in"));
    let extra_index = ours.indexes.remove("IndexRealisationsRefsRealisationReference").unwrap();
    assert_eq!(extra_index, ("RealisationsRefs".into(), false, vec!["realisationReference".into()]));

    assert_eq!(ours.columns, theirs.columns);
    assert_eq!(ours.foreign_keys, theirs.foreign_keys);
    assert_eq!(ours.indexes, theirs.indexes);
    assert_eq!(ours.triggers, theirs.triggers);

    // The same files in the database directory, with the same version texts.
    for dir in [&by_nix, &by_us] {
        let db_dir = dir.state_dir().join("db");
        assert_eq!(std::fs::read_to_string(db_dir.join("schema")).unwrap(), "10");
        assert_eq!(std::fs::read_to_string(db_dir.join("ca-schema")).unwrap(), "3");
        assert!(db_dir.join("big-lock").exists());
    }
}
