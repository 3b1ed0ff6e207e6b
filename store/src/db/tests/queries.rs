//! Lookups by hash part, sets of valid paths, closures and the topological sort.

use super::derivations::register_sample;
use super::*;
use crate::db::{ClosureOptions, DbError};

#[test]
fn path_from_hash_part() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    db.register_valid_paths(&[info(&a, &[]), info(&b, &[])], &no_drvs()).unwrap();
    assert_eq!(db.query_path_from_hash_part(a.hash_part()).unwrap(), Some(a.clone()));
    assert_eq!(db.query_path_from_hash_part(b.hash_part()).unwrap(), Some(b));
    assert_eq!(db.query_path_from_hash_part(path("c").hash_part()).unwrap(), None);
    // The smallest and largest possible hash parts find nothing (or only an exact match).
    assert_eq!(db.query_path_from_hash_part(&"0".repeat(32)).unwrap(), None);
    assert_eq!(db.query_path_from_hash_part(&"z".repeat(32)).unwrap(), None);
    assert!(matches!(db.query_path_from_hash_part("abc"), Err(DbError::InvalidHashPart(_))));
}

#[test]
fn valid_subsets() {
    let (_dir, db) = fresh();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    db.register_valid_paths(&[info(&a, &[]), info(&b, &[])], &no_drvs()).unwrap();
    assert_eq!(db.query_valid_paths([&a, &c]).unwrap(), set(&[&a]));
    assert_eq!(db.query_all_valid_paths().unwrap(), set(&[&a, &b]));
    assert!(db.is_valid(&b).unwrap());
    assert!(!db.is_valid(&c).unwrap());
}

#[test]
fn references_of_an_invalid_path_are_an_error() {
    let (_dir, db) = fresh();
    assert!(matches!(db.query_references(&path("x")), Err(DbError::InvalidPath(_))));
    assert!(db.query_referrers(&path("x")).unwrap().is_empty());
}

#[test]
fn requisites_and_referrers_closures() {
    let (_dir, db) = fresh();
    let (a, b, c, d) = (path("a"), path("b"), path("c"), path("d"));
    db.register_valid_paths(&[info(&a, &[&b, &a]), info(&b, &[&c]), info(&c, &[]), info(&d, &[&c])], &no_drvs())
        .unwrap();
    let fwd = ClosureOptions::default();
    assert_eq!(db.closure([&a], fwd).unwrap(), set(&[&a, &b, &c]));
    assert_eq!(db.closure([&d, &b], fwd).unwrap(), set(&[&b, &c, &d]));
    let back = ClosureOptions { flip_direction: true, ..Default::default() };
    assert_eq!(db.closure([&c], back).unwrap(), set(&[&a, &b, &c, &d]));
    assert!(matches!(db.closure([&path("x")], fwd), Err(DbError::InvalidPath(_))));
}

#[test]
fn closures_with_outputs_and_derivers() {
    let (_dir, db) = fresh();
    let (drv_path, _) = register_sample(&db);
    let src = path("builder.sh");
    let out = path("hello");
    let mut out_info = info(&out, &[]);
    out_info.deriver = Some(drv_path.clone());
    db.register_valid_paths(&[out_info], &no_drvs()).unwrap();

    let plain = db.closure([&drv_path], ClosureOptions::default()).unwrap();
    assert_eq!(plain, set(&[&drv_path, &src]));
    let with_outputs = ClosureOptions { include_outputs: true, ..Default::default() };
    // Only valid outputs are added (the fixed output is not valid).
    assert_eq!(db.closure([&drv_path], with_outputs).unwrap(), set(&[&drv_path, &src, &out]));
    let with_derivers = ClosureOptions { include_derivers: true, ..Default::default() };
    assert_eq!(db.closure([&out], with_derivers).unwrap(), set(&[&out, &drv_path, &src]));

    let flipped_outputs = ClosureOptions { flip_direction: true, include_outputs: true, include_derivers: false };
    assert_eq!(db.closure([&out], flipped_outputs).unwrap(), set(&[&out, &drv_path]));
    let flipped_derivers = ClosureOptions { flip_direction: true, include_outputs: false, include_derivers: true };
    assert_eq!(db.closure([&drv_path], flipped_derivers).unwrap(), set(&[&drv_path, &out]));
}

#[test]
fn topological_sort_of_valid_paths() {
    let (_dir, db) = fresh();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    db.register_valid_paths(&[info(&a, &[&b]), info(&b, &[&c]), info(&c, &[&c])], &no_drvs()).unwrap();
    assert_eq!(db.topo_sort_paths(&set(&[&c, &a, &b])).unwrap(), vec![a.clone(), b.clone(), c.clone()]);
    // Unrelated paths (a refers to c only through b) come in Nix's order: by reversed base name.
    let mut unrelated = vec![a.clone(), c.clone()];
    unrelated.sort();
    unrelated.reverse();
    assert_eq!(db.topo_sort_paths(&set(&[&c, &a])).unwrap(), unrelated);
    assert!(matches!(db.topo_sort_paths(&set(&[&path("x")])), Err(DbError::InvalidPath(_))));
}

#[test]
fn cached_queries_are_not_compiled_again_on_each_run() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    db.register_valid_paths(&[info(&a, &[]), info(&b, &[&a])], &no_drvs()).unwrap();
    for _ in 0..3 {
        assert_eq!(db.query_path_info(&b).unwrap().unwrap().references, set(&[&a]));
        assert_eq!(db.query_path_info(&a).unwrap().unwrap().references, set(&[]));
    }
    // The references query joins on a parameter: without a stable plan, SQLite's STAT4 planner
    // compiles it again for every run.
    let conn = db.nix_conn();
    let stmt = conn.prepare_cached("select path from Refs join ValidPaths on reference = id where referrer = ?1").unwrap();
    assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
}

#[test]
fn a_failed_read_leaves_the_connection_usable() {
    let (_dir, db) = fresh();
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[])], &no_drvs()).unwrap();
    let failed: Result<(), DbError> = db.read(|_| Err(DbError::ReadOnly));
    assert!(matches!(failed, Err(DbError::ReadOnly)));
    assert!(db.nix_conn().is_autocommit(), "the transaction was rolled back");
    assert!(db.is_valid(&a).unwrap());
}
