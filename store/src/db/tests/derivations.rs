//! Registering `.drv` paths: `DerivationOutputs`, derivers, and the checks on the supplied
//! derivation.

use super::*;
use crate::db::DbError;
use nix_formats::content_address::{ContentAddress, Method, MethodAlgo};
use nix_formats::derivation::{Derivation, DerivationOutput};

/// A derivation with an input-addressed `out`, a fixed-output-style `fixed`, a floating `float`
/// output, and `src` as input source.
pub(super) fn sample_derivation(src: &StorePath) -> Derivation {
    let mut drv = Derivation {
        name: "hello".into(),
        system: b"x86_64-linux".to_vec(),
        builder: b"/bin/sh".to_vec(),
        args: vec![b"-c".to_vec(), b"true".to_vec()],
        ..Default::default()
    };
    drv.input_srcs.insert(src.clone());
    drv.outputs.insert("out".into(), DerivationOutput::InputAddressed(path("hello")));
    drv.outputs.insert(
        "fixed".into(),
        DerivationOutput::CaFixed(ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, b"f") }),
    );
    drv.outputs
        .insert("float".into(), DerivationOutput::CaFloating(MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 }));
    drv
}

/// Registers `src` and the sample derivation; returns the `.drv` path and the derivation.
pub(super) fn register_sample(db: &Db) -> (StorePath, Derivation) {
    let src = path("builder.sh");
    let drv = sample_derivation(&src);
    let drv_path = drv.drv_path(&store_dir()).unwrap();
    let drv_info = info(&drv_path, &[&src]);
    let drvs = [(drv_path.clone(), drv.clone())].into();
    db.register_valid_paths(&[drv_info, info(&src, &[])], &drvs).unwrap();
    (drv_path, drv)
}

#[test]
fn outputs_with_known_paths_are_recorded() {
    let (_dir, db) = fresh();
    let (drv_path, drv) = register_sample(&db);
    let outputs = db.query_derivation_outputs(&drv_path).unwrap();
    let expected: BTreeMap<String, StorePath> = drv
        .output_paths(&store_dir())
        .unwrap()
        .into_iter()
        .filter_map(|(name, p)| p.map(|p| (name, p)))
        .collect();
    assert_eq!(outputs, expected);
    assert_eq!(outputs.keys().collect::<Vec<_>>(), ["fixed", "out"]);
    assert_eq!(db.query_valid_derivers(&path("hello")).unwrap(), set(&[&drv_path]));
    assert!(db.query_valid_derivers(&path("unrelated")).unwrap().is_empty());
}

#[test]
fn outputs_of_an_invalid_derivation_are_an_error() {
    let (_dir, db) = fresh();
    let err = db.query_derivation_outputs(&path("x.drv")).unwrap_err();
    assert!(matches!(err, DbError::InvalidPath(_)), "{err}");
}

#[test]
fn a_new_drv_needs_its_derivation() {
    let (_dir, db) = fresh();
    let src = path("builder.sh");
    let drv = sample_derivation(&src);
    let drv_path = drv.drv_path(&store_dir()).unwrap();
    let err = db.register_valid_paths(&[info(&drv_path, &[&src]), info(&src, &[])], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::MissingDerivation(_)), "{err}");
    assert!(db.query_all_valid_paths().unwrap().is_empty());
}

#[test]
fn the_derivation_must_match_its_path() {
    let (_dir, db) = fresh();
    let src = path("builder.sh");
    let drv = sample_derivation(&src);
    let wrong = path("other.drv");
    let drvs = [(wrong.clone(), drv)].into();
    let err = db.register_valid_paths(&[info(&wrong, &[&src]), info(&src, &[])], &drvs).unwrap_err();
    assert!(matches!(err, DbError::DerivationMismatch { .. }), "{err}");
}

#[test]
fn reregistering_a_drv_does_not_need_the_derivation() {
    let (_dir, db) = fresh();
    let (drv_path, _) = register_sample(&db);
    let mut again = info(&drv_path, &[&path("builder.sh")]);
    again.sigs = ["k:s".to_owned()].into();
    db.register_valid_paths(&[again], &no_drvs()).unwrap();
    assert_eq!(db.query_derivation_outputs(&drv_path).unwrap().len(), 2);
}

#[test]
fn outputs_go_with_the_derivation() {
    let (_dir, db) = fresh();
    let (drv_path, _) = register_sample(&db);
    db.invalidate_paths([&drv_path]).unwrap();
    let rows: i64 = sql_value(&db, "select count(*) from DerivationOutputs");
    assert_eq!(rows, 0);
    assert!(db.query_valid_derivers(&path("hello")).unwrap().is_empty());
}
