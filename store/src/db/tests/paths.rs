//! Registering paths and reading their infos back.

use super::*;
use crate::db::DbError;
use nix_formats::content_address::{ContentAddress, Method};

#[test]
fn path_info_round_trips_every_field() {
    let (_dir, db) = fresh();
    let dep = path("dep");
    let drv = path("thing.drv");
    let a = path("a");
    let mut ia = info(&a, &[&dep, &a]);
    ia.deriver = Some(drv.clone());
    ia.ultimate = true;
    ia.sigs = ["k1:c2ln".to_owned(), "k2:c2ln".to_owned()].into();
    db.register_valid_paths(&[ia.clone(), info(&dep, &[])], &no_drvs()).unwrap();
    assert_eq!(db.query_path_info(&a).unwrap(), Some(ia));
    assert_eq!(db.query_path_info(&path("missing")).unwrap(), None);
}

#[test]
fn columns_are_written_like_nix() {
    let (_dir, db) = fresh();
    let a = path("a");
    let mut ia = info(&a, &[]);
    ia.nar_size = 0;
    ia.registration_time = 0;
    db.register_valid_paths(&[ia.clone()], &no_drvs()).unwrap();
    let hash: String = sql_value(&db, "select hash from ValidPaths");
    assert_eq!(hash, format!("sha256:{}", ia.nar_hash.to_base16()));
    let nulls: i64 = sql_value(
        &db,
        "select count(*) from ValidPaths where narSize is null and ultimate is null and sigs is null and ca is null and deriver is null",
    );
    assert_eq!(nulls, 1);
    let time: i64 = sql_value(&db, "select registrationTime from ValidPaths");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - time).abs() < 60, "registration time 0 means now");
    let stored_path: String = sql_value(&db, "select path from ValidPaths");
    assert_eq!(stored_path, store_dir().print(&a));
}

#[test]
fn reregistration_updates_like_nix() {
    let (_dir, db) = fresh();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    let mut first = info(&a, &[&b]);
    first.deriver = Some(path("first.drv"));
    db.register_valid_paths(&[first.clone(), info(&b, &[]), info(&c, &[])], &no_drvs()).unwrap();

    let mut second = info(&a, &[&c]);
    second.nar_hash = Hash::of(Algorithm::Sha256, b"other");
    second.nar_size = 999;
    second.ultimate = true;
    second.sigs = ["k:x".to_owned()].into();
    second.deriver = Some(path("second.drv"));
    second.registration_time = 42;
    db.register_valid_paths(&[second.clone()], &no_drvs()).unwrap();

    let got = db.query_path_info(&a).unwrap().unwrap();
    assert_eq!(got.nar_hash, second.nar_hash);
    assert_eq!(got.nar_size, 999);
    assert!(got.ultimate);
    assert_eq!(got.sigs, second.sigs);
    // Deriver and registration time are kept; references are only ever added.
    assert_eq!(got.deriver, first.deriver);
    assert_eq!(got.registration_time, first.registration_time);
    assert_eq!(got.references, set(&[&b, &c]));
}

#[test]
fn batch_paths_may_refer_to_each_other_in_any_order() {
    let (_dir, db) = fresh();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    // Given referrers first: references are added after all rows exist.
    db.register_valid_paths(&[info(&a, &[&b, &c]), info(&b, &[&c]), info(&c, &[&c])], &no_drvs()).unwrap();
    assert_eq!(db.query_references(&a).unwrap(), set(&[&b, &c]));
    assert_eq!(db.query_referrers(&c).unwrap(), set(&[&a, &b, &c]));
    // Rows are inserted references-first.
    let order: String = sql_value(&db, "select group_concat(substr(path, 45), ',') from (select path from ValidPaths order by id)");
    assert_eq!(order, "c,b,a");
}

#[test]
fn cycles_are_refused_and_nothing_is_written() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    let err = db.register_valid_paths(&[info(&a, &[&b]), info(&b, &[&a])], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::Cycle { .. }), "{err}");
    assert!(db.query_all_valid_paths().unwrap().is_empty());
}

#[test]
fn unknown_references_are_refused_and_nothing_is_written() {
    let (_dir, db) = fresh();
    let (a, b) = (path("a"), path("b"));
    let err = db.register_valid_paths(&[info(&a, &[&b])], &no_drvs()).unwrap_err();
    assert!(matches!(&err, DbError::InvalidReference { reference, .. } if reference.ends_with("-b")), "{err}");
    assert!(!db.is_valid(&a).unwrap());
    // Once b is valid, a can refer to it.
    db.register_valid_paths(&[info(&b, &[])], &no_drvs()).unwrap();
    db.register_valid_paths(&[info(&a, &[&b])], &no_drvs()).unwrap();
    assert_eq!(db.query_references(&a).unwrap(), set(&[&b]));
}

#[test]
fn duplicates_and_non_sha256_are_refused() {
    let (_dir, db) = fresh();
    let a = path("a");
    let err = db.register_valid_paths(&[info(&a, &[]), info(&a, &[])], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::DuplicatePath(_)), "{err}");
    let mut bad = info(&a, &[]);
    bad.nar_hash = Hash::of(Algorithm::Sha1, b"x");
    let err = db.register_valid_paths(&[bad], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::NarHashNotSha256 { .. }), "{err}");
    let mut huge = info(&a, &[]);
    huge.nar_size = u64::MAX;
    let err = db.register_valid_paths(&[huge], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::ValueOutOfRange { field: "narSize", .. }), "{err}");
    assert!(db.query_all_valid_paths().unwrap().is_empty());
}

#[test]
fn content_addresses_are_checked_for_new_paths() {
    let (_dir, db) = fresh();
    let dep = path("dep");
    db.register_valid_paths(&[info(&dep, &[])], &no_drvs()).unwrap();
    let ca = ContentAddress { method: Method::Text, hash: Hash::of(Algorithm::Sha256, b"hello") };
    let good = ca.store_path(&store_dir(), "hello.txt", [&dep], false).unwrap();
    let mut ok = info(&good, &[&dep]);
    ok.ca = Some(ca.clone());
    db.register_valid_paths(&[ok.clone()], &no_drvs()).unwrap();
    assert_eq!(db.query_path_info(&good).unwrap().unwrap().ca, Some(ca.clone()));
    let stored: String = sql_value(&db, &format!("select ca from ValidPaths where path = '{}'", store_dir().print(&good)));
    assert_eq!(stored, ca.to_string());

    let mut lying = info(&path("liar"), &[]);
    lying.ca = Some(ca);
    let err = db.register_valid_paths(&[lying], &no_drvs()).unwrap_err();
    assert!(matches!(err, DbError::NotContentAddressed(_)), "{err}");
}

#[test]
fn signatures_are_added() {
    let (_dir, db) = fresh();
    let a = path("a");
    let mut ia = info(&a, &[]);
    ia.sigs = ["k1:aaa".to_owned()].into();
    db.register_valid_paths(&[ia], &no_drvs()).unwrap();
    db.add_signatures(&a, &["k2:bbb".to_owned(), "k1:aaa".to_owned()].into()).unwrap();
    let got = db.query_path_info(&a).unwrap().unwrap();
    assert_eq!(got.sigs, ["k1:aaa".to_owned(), "k2:bbb".to_owned()].into());
    let stored: String = sql_value(&db, "select sigs from ValidPaths");
    assert_eq!(stored, "k1:aaa k2:bbb");
    let err = db.add_signatures(&path("nope"), &BTreeSet::new()).unwrap_err();
    assert!(matches!(err, DbError::InvalidPath(_)), "{err}");
}

#[test]
fn register_valid_path_registers_one() {
    let (_dir, db) = fresh();
    let a = path("a");
    db.register_valid_path(&info(&a, &[&a]), None).unwrap();
    assert_eq!(db.query_references(&a).unwrap(), set(&[&a]));
}

#[test]
fn many_paths_in_one_registration() {
    let (_dir, db) = fresh();
    let paths: Vec<StorePath> = (0..500).map(|i| path(&format!("p{i}"))).collect();
    let infos: Vec<ValidPathInfo> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| if i == 0 { info(p, &[]) } else { info(p, &[&paths[i - 1], &paths[0]]) })
        .collect();
    db.register_valid_paths(&infos, &no_drvs()).unwrap();
    assert_eq!(db.query_all_valid_paths().unwrap().len(), 500);
    assert_eq!(db.query_referrers(&paths[0]).unwrap().len(), 499);
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn arb_info() -> impl Strategy<Value = ValidPathInfo> {
        (
            "[a-z][a-z0-9.+_-]{0,20}",
            proptest::collection::vec(any::<u8>(), 32),
            0u64..(1 << 40),
            proptest::option::of("[a-z]{1,8}\\.drv"),
            any::<bool>(),
            proptest::collection::btree_set("[a-z0-9.-]{1,12}:[A-Za-z0-9+/=]{1,30}", 0..4),
            0u64..(1 << 33),
            proptest::collection::btree_set("[a-z]{1,6}", 0..4),
            any::<bool>(),
        )
            .prop_map(|(name, digest, size, deriver, ultimate, sigs, time, refs, self_ref)| {
                let p = path(&name);
                let mut i = ValidPathInfo::new(p.clone(), Hash::from_digest(Algorithm::Sha256, &digest).unwrap());
                i.nar_size = size;
                i.deriver = deriver.map(|d| path(&d));
                i.ultimate = ultimate;
                i.sigs = sigs;
                i.registration_time = time;
                i.references = refs.iter().map(|r| path(&format!("ref-{r}"))).collect();
                if self_ref {
                    i.references.insert(p);
                }
                i
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn path_info_round_trips_through_the_database(info in arb_info()) {
            let (_dir, db) = fresh();
            let mut batch: Vec<ValidPathInfo> =
                info.references.iter().filter(|r| **r != info.path).map(|r| super::info(r, &[])).collect();
            batch.push(info.clone());
            db.register_valid_paths(&batch, &no_drvs()).unwrap();
            let mut expected = info.clone();
            if expected.registration_time == 0 {
                expected.registration_time = db.query_path_info(&info.path).unwrap().unwrap().registration_time;
            }
            prop_assert_eq!(db.query_path_info(&info.path).unwrap(), Some(expected));
        }
    }
}
