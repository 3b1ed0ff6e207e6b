//! The SQL schema of Nix's store database (schema version 10) and of casnix's own file.
//!
//! Table and column names, types, constraints, indexes and triggers are those of Nix (2.8 through
//! 2.26), so either program can open a database the other one made. Every statement is
//! `if not exists`, so running a block twice is harmless, as it is in Nix.

/// The schema version Nix 2.x writes to `$NIX_STATE_DIR/db/schema` (as the bare text `10`).
pub const NIX_SCHEMA_VERSION: u32 = 10;

/// The oldest schema version this crate opens. Older stores must first be migrated by Nix.
pub const OLDEST_SUPPORTED_SCHEMA: u32 = 10;

/// The name under which Nix 2.26 records, in its `SchemaMigrations` table, that the
/// content-addressed-derivation tables exist.
pub const CA_MIGRATION_NAME: &str = "20220326-ca-derivations";

/// What casnix writes to `$NIX_STATE_DIR/db/ca-schema` when it creates the content-addressed
/// tables and the file is missing. Nix 2.6–2.8 read this file (when `ca-derivations` is enabled)
/// and accept exactly 3; Nix 2.9–2.24 upgrade 3 to 4 (adding a trigger and an index that casnix
/// already creates); Nix 2.26 and later ignore the file. Nix 2.25 alone rejects 3.
pub const NIX_CA_SCHEMA_FILE_VERSION: u32 = 3;

/// The version of casnix's own database file, kept in its `user_version` pragma.
pub const CASNIX_SCHEMA_VERSION: i64 = 1;

/// The base schema (Nix's `schema.sql`): valid paths, their references, and the outputs of
/// valid derivations.
pub const BASE_SCHEMA: &str = r#"
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);

create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);

create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);

-- A self-reference (N, N) would block deleting N (restrict on Refs.reference), so the trigger
-- removes it first.
create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;

create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);

create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
"#;

/// The content-addressed-derivation extension (Nix 2.26's `ca-specific-schema.sql`, which is
/// Nix 2.8's plus the `DeleteSelfRefsViaRealisations` trigger and its index).
pub const CA_SCHEMA: &str = r#"
create table if not exists Realisations (
    id integer primary key autoincrement not null,
    drvPath text not null,
    outputName text not null,
    outputPath integer not null,
    signatures text,
    foreign key (outputPath) references ValidPaths(id) on delete cascade
);

create index if not exists IndexRealisations on Realisations(drvPath, outputName);

-- Deleting a path must first drop realisation references that point at realisations of that
-- path, or a dependency loop between realisations would block the cascade.
create trigger if not exists DeleteSelfRefsViaRealisations before delete on ValidPaths
  begin
    delete from RealisationsRefs where realisationReference in (
      select id from Realisations where outputPath = old.id
    );
  end;

create table if not exists RealisationsRefs (
    referrer integer not null,
    realisationReference integer,
    foreign key (referrer) references Realisations(id) on delete cascade,
    foreign key (realisationReference) references Realisations(id) on delete restrict
);

create index if not exists IndexRealisationsRefsRealisationReference on RealisationsRefs(realisationReference);
create index if not exists IndexRealisationsRefs on RealisationsRefs(referrer);
create index if not exists IndexRealisationsRefsOnOutputPath on Realisations(outputPath);
"#;

/// Nix 2.26's table of applied fine-grained migrations.
pub const SCHEMA_MIGRATIONS_TABLE: &str =
    "create table if not exists SchemaMigrations (migration text primary key not null);";

/// casnix's own file: the castore root of each store path it holds, bound to the NAR hash the
/// root renders to.
pub const CASNIX_SCHEMA: &str = r#"
create table if not exists CastoreRoots (
    path     text primary key not null,
    narHash  text not null,
    root     blob not null,
    recorded integer not null
);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_apply_twice() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for _ in 0..2 {
            conn.execute_batch(BASE_SCHEMA).unwrap();
            conn.execute_batch(CA_SCHEMA).unwrap();
            conn.execute_batch(SCHEMA_MIGRATIONS_TABLE).unwrap();
            conn.execute_batch(CASNIX_SCHEMA).unwrap();
        }
        let tables: Vec<String> = conn
            .prepare("select name from sqlite_master where type = 'table' order by name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "CastoreRoots",
                "DerivationOutputs",
                "Realisations",
                "RealisationsRefs",
                "Refs",
                "SchemaMigrations",
                "ValidPaths",
                "sqlite_sequence"
            ]
        );
    }
}
