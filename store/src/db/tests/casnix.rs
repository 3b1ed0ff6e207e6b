//! casnix's own file: castore roots, bound to NAR hashes, kept consistent with Nix's database.

use super::*;
use crate::db::{CastoreRoot, DbError, MAX_CASTORE_ROOT_LEN};

#[test]
fn roots_are_trusted_only_for_valid_paths_with_the_same_hash() {
    let (_dir, db) = fresh();
    let a = path("a");
    let ia = info(&a, &[]);
    // Written first, as an add does: not visible until the path is valid.
    db.set_castore_root(&a, &ia.nar_hash, b"root-a").unwrap();
    assert_eq!(db.castore_root(&a).unwrap(), None);
    db.register_valid_path(&ia, None).unwrap();
    assert_eq!(db.castore_root(&a).unwrap().as_deref(), Some(&b"root-a"[..]));

    // Replaced by other contents (as Nix could do while casnix is stopped): the root is stale.
    let mut replaced = ia.clone();
    replaced.nar_hash = Hash::of(Algorithm::Sha256, b"other contents");
    db.register_valid_paths(&[replaced], &no_drvs()).unwrap();
    assert_eq!(db.castore_root(&a).unwrap(), None);
}

#[test]
fn invalidation_removes_roots() {
    let (_dir, db) = fresh();
    let a = path("a");
    let ia = info(&a, &[]);
    db.set_castore_root(&a, &ia.nar_hash, b"root").unwrap();
    db.register_valid_path(&ia, None).unwrap();
    db.invalidate_paths([&a]).unwrap();
    let conn = rusqlite::Connection::open(db.casnix_db_path()).unwrap();
    let rows: i64 = conn.query_row("select count(*) from CastoreRoots", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
    // Registering again without a new root: no root.
    db.register_valid_paths(&[ia], &no_drvs()).unwrap();
    assert_eq!(db.castore_root(&a).unwrap(), None);
}

#[test]
fn reconcile_drops_what_nix_does_not_back() {
    let (_dir, db) = fresh();
    let (kept, orphan, replaced) = (path("kept"), path("orphan"), path("replaced"));
    let (ik, io, ir) = (info(&kept, &[]), info(&orphan, &[]), info(&replaced, &[]));
    db.set_castore_roots(&[
        CastoreRoot { path: kept.clone(), nar_hash: ik.nar_hash.clone(), root: b"k".to_vec() },
        CastoreRoot { path: orphan.clone(), nar_hash: io.nar_hash.clone(), root: b"o".to_vec() },
        CastoreRoot { path: replaced.clone(), nar_hash: Hash::of(Algorithm::Sha256, b"old"), root: b"r".to_vec() },
    ])
    .unwrap();
    // A crash before registering `orphan`; `replaced` was registered with other contents.
    db.register_valid_paths(&[ik, ir], &no_drvs()).unwrap();
    assert_eq!(db.reconcile_castore_roots().unwrap(), 2);
    assert_eq!(db.reconcile_castore_roots().unwrap(), 0);
    assert_eq!(db.castore_root(&kept).unwrap().as_deref(), Some(&b"k"[..]));
    assert_eq!(db.remove_castore_roots([&kept]).unwrap(), 1);
    assert_eq!(db.castore_root(&kept).unwrap(), None);
}

#[test]
fn oversized_roots_are_refused() {
    let (_dir, db) = fresh();
    let a = path("a");
    let big = vec![0u8; MAX_CASTORE_ROOT_LEN + 1];
    let err = db.set_castore_root(&a, &info(&a, &[]).nar_hash, &big).unwrap_err();
    assert!(matches!(err, DbError::CastoreRootTooLarge { .. }), "{err}");
}

#[test]
fn roots_survive_reopening() {
    let (dir, db) = fresh();
    let a = path("a");
    let ia = info(&a, &[]);
    db.set_castore_root(&a, &ia.nar_hash, b"root").unwrap();
    db.register_valid_paths(&[ia], &no_drvs()).unwrap();
    drop(db);
    let db = open_rw(dir.path());
    assert_eq!(db.castore_root(&a).unwrap().as_deref(), Some(&b"root"[..]));
}
