//! Realisations: registering, merging, dependencies, cascade on invalidation.

use super::*;
use crate::db::DbError;
use nix_formats::realisation::{DrvOutput, Realisation};

fn drv_output(seed: &str, name: &str) -> DrvOutput {
    DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, seed.as_bytes()), output_name: name.into() }
}

fn realisation(id: DrvOutput, out: &StorePath) -> Realisation {
    Realisation { id, out_path: out.clone(), signatures: BTreeSet::new(), dependent_realisations: BTreeMap::new() }
}

#[test]
fn register_and_query() {
    let (_dir, db) = fresh();
    let (o1, o2) = (path("o1"), path("o2"));
    db.register_valid_paths(&[info(&o1, &[]), info(&o2, &[&o1])], &no_drvs()).unwrap();
    let dep = realisation(drv_output("d1", "out"), &o1);
    let mut top = realisation(drv_output("d2", "out"), &o2);
    top.signatures.insert("k:sig".into());
    top.dependent_realisations.insert(dep.id.clone(), o1.clone());
    db.register_realisation(&dep).unwrap();
    db.register_realisation(&top).unwrap();
    assert_eq!(db.query_realisation(&top.id).unwrap(), Some(top.clone()));
    assert_eq!(db.query_realisation(&dep.id).unwrap(), Some(dep.clone()));
    assert_eq!(db.query_realisation(&drv_output("d3", "out")).unwrap(), None);
    let all = db.query_realisations_of(&top.id.drv_hash).unwrap();
    assert_eq!(all, [("out".to_owned(), o2.clone())].into());
    let stored: String = sql_value(&db, "select drvPath from Realisations where outputName = 'out' order by id limit 1");
    assert_eq!(stored, dep.id.hash_text());
}

#[test]
fn compatible_registration_merges_signatures() {
    let (_dir, db) = fresh();
    let o = path("o");
    db.register_valid_paths(&[info(&o, &[])], &no_drvs()).unwrap();
    let mut r = realisation(drv_output("d", "out"), &o);
    r.signatures.insert("k1:a".into());
    db.register_realisation(&r).unwrap();
    let mut again = r.clone();
    again.signatures = ["k2:b".to_owned()].into();
    db.register_realisation(&again).unwrap();
    let got = db.query_realisation(&r.id).unwrap().unwrap();
    assert_eq!(got.signatures, ["k1:a".to_owned(), "k2:b".to_owned()].into());
    let rows: i64 = sql_value(&db, "select count(*) from Realisations");
    assert_eq!(rows, 1);
}

#[test]
fn conflicts_and_bad_dependencies_are_refused() {
    let (_dir, db) = fresh();
    let (o, p) = (path("o"), path("p"));
    db.register_valid_paths(&[info(&o, &[]), info(&p, &[])], &no_drvs()).unwrap();
    let r = realisation(drv_output("d", "out"), &o);
    db.register_realisation(&r).unwrap();
    let err = db.register_realisation(&realisation(r.id.clone(), &p)).unwrap_err();
    assert!(matches!(err, DbError::IncompatibleRealisation { .. }), "{err}");

    let mut missing_dep = realisation(drv_output("e", "out"), &p);
    missing_dep.dependent_realisations.insert(drv_output("nope", "out"), o.clone());
    let err = db.register_realisation(&missing_dep).unwrap_err();
    assert!(matches!(err, DbError::BadDependentRealisation { problem: "is not registered", .. }), "{err}");
    // Rolled back: the realisation itself was not kept.
    assert_eq!(db.query_realisation(&missing_dep.id).unwrap(), None);

    let mut wrong_dep = realisation(drv_output("f", "out"), &p);
    wrong_dep.dependent_realisations.insert(r.id.clone(), p.clone());
    let err = db.register_realisation(&wrong_dep).unwrap_err();
    assert!(matches!(err, DbError::BadDependentRealisation { problem: "maps to another path here", .. }), "{err}");

    let err = db.register_realisation(&realisation(drv_output("g", "out"), &path("invalid"))).unwrap_err();
    assert!(matches!(err, DbError::InvalidPath(_)), "{err}");
}

#[test]
fn realisations_go_with_their_output_path() {
    let (_dir, db) = fresh();
    let (o1, o2) = (path("o1"), path("o2"));
    db.register_valid_paths(&[info(&o1, &[]), info(&o2, &[])], &no_drvs()).unwrap();
    let dep = realisation(drv_output("d1", "out"), &o1);
    let mut top = realisation(drv_output("d2", "out"), &o2);
    top.dependent_realisations.insert(dep.id.clone(), o1.clone());
    db.register_realisation(&dep).unwrap();
    db.register_realisation(&top).unwrap();
    // o1's realisation is depended on by o2's; the trigger removes that link first.
    db.invalidate_paths([&o1]).unwrap();
    assert_eq!(db.query_realisation(&dep.id).unwrap(), None);
    let got = db.query_realisation(&top.id).unwrap().unwrap();
    assert!(got.dependent_realisations.is_empty());
    db.invalidate_paths([&o2]).unwrap();
    let rows: i64 = sql_value(&db, "select count(*) from Realisations");
    assert_eq!(rows, 0);
}
