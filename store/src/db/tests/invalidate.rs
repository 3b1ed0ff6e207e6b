//! Invalidating paths.

use super::*;
use crate::db::DbError;

#[test]
fn paths_in_use_are_refused() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    db.register_valid_paths(&[info(&a, &[&b]), info(&b, &[])], &no_drvs()).unwrap();
    let err = db.invalidate_paths([&b]).unwrap_err();
    match err {
        DbError::PathInUse { path, referrers } => {
            assert_eq!(path, store_dir().print(&b));
            assert_eq!(referrers, vec![store_dir().print(&a)]);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(db.is_valid(&b).unwrap());
}

#[test]
fn a_closed_set_goes_at_once_in_any_order() {
    let (_dir, db) = fresh();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    db.register_valid_paths(&[info(&a, &[&b, &a]), info(&b, &[&c, &b]), info(&c, &[&c])], &no_drvs()).unwrap();
    let removed = db.invalidate_paths([&c, &b, &a, &path("never-valid")]).unwrap();
    assert_eq!(removed, set(&[&a, &b, &c]));
    assert!(db.query_all_valid_paths().unwrap().is_empty());
    let refs: i64 = sql_value(&db, "select count(*) from Refs");
    assert_eq!(refs, 0);
}

#[test]
fn self_references_do_not_block() {
    let (_dir, db) = fresh();
    let a = path("a");
    db.register_valid_paths(&[info(&a, &[&a])], &no_drvs()).unwrap();
    assert_eq!(db.invalidate_paths([&a]).unwrap(), set(&[&a]));
    assert!(!db.is_valid(&a).unwrap());
}

#[test]
fn a_leaf_can_go_and_come_back() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    db.register_valid_paths(&[info(&a, &[&b]), info(&b, &[])], &no_drvs()).unwrap();
    db.invalidate_paths([&a]).unwrap();
    assert!(db.query_referrers(&b).unwrap().is_empty());
    db.invalidate_paths([&b]).unwrap();
    db.register_valid_paths(&[info(&a, &[&b]), info(&b, &[])], &no_drvs()).unwrap();
    assert_eq!(db.query_references(&a).unwrap(), set(&[&b]));
}
