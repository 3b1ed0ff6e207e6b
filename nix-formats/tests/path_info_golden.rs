//! Golden JSON files of Nix 2.26.3 (`path-info/`, `nar-info/`; testdata README section 7): each
//! decodes to the documented values and encodes back to an equal JSON value.

use std::collections::BTreeSet;

use nix_formats::content_address::ContentAddress;
use nix_formats::hash::Hash;
use nix_formats::narinfo::NarInfo;
use nix_formats::path_info::{JsonOptions, ValidPathInfo};
use nix_formats::store_path::{StoreDir, StorePath};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-2.26.3");

fn read(rel: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{rel}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sd() -> StoreDir {
    StoreDir::default()
}

fn path(s: &str) -> StorePath {
    sd().parse(s).unwrap()
}

fn p_ca() -> StorePath {
    path("/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo")
}

fn h1() -> Hash {
    Hash::parse_prefixed("sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=").unwrap()
}

/// The info with only narHash `H1` set (the store path is given from outside).
fn empty() -> ValidPathInfo {
    ValidPathInfo::new(p_ca(), h1())
}

/// `VPI`: `P.ca` with `CA.nar`, narSize 34878, references {`P.bar`, `P.ca`}.
fn vpi() -> ValidPathInfo {
    let mut info = empty();
    info.nar_size = 34878;
    info.references = BTreeSet::from([path("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar"), p_ca()]);
    info.ca =
        Some(ContentAddress::parse("fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh").unwrap());
    info
}

/// `VPI` plus deriver `P.bar.drv`, registrationTime 23423, ultimate, signatures {asdf, qwer}.
fn vpi_impure() -> ValidPathInfo {
    let mut info = vpi();
    info.deriver = Some(path("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv"));
    info.registration_time = 23423;
    info.ultimate = true;
    info.sigs = BTreeSet::from(["asdf".to_owned(), "qwer".to_owned()]);
    info
}

fn check_path_info(file: &str, expected: &ValidPathInfo, options: &JsonOptions) {
    let json = read(file);
    let decoded = ValidPathInfo::from_json(&sd(), p_ca(), &json).unwrap();
    assert_eq!(&decoded, expected, "{file}");
    assert_eq!(expected.to_json(&sd(), options), json, "{file}");
}

#[test]
fn path_info_files() {
    check_path_info("path-info/empty_pure.json", &empty(), &JsonOptions::PURE);
    check_path_info("path-info/empty_impure.json", &empty(), &JsonOptions::IMPURE);
    check_path_info("path-info/pure.json", &vpi(), &JsonOptions::PURE);
    check_path_info("path-info/impure.json", &vpi_impure(), &JsonOptions::IMPURE);
}

#[test]
fn golden_vpi_is_content_addressed() {
    assert!(vpi().is_content_addressed(&sd()));
    assert!(vpi_impure().is_content_addressed(&sd()));
}

#[test]
fn nar_info_files() {
    // The pure view has no cache fields, so it is the same as the path info's.
    let pure = NarInfo::new(vpi(), "", "");
    let json = read("nar-info/pure.json");
    assert_eq!(NarInfo::from_json(&sd(), p_ca(), &json).unwrap(), pure);
    assert_eq!(pure.to_json(&sd(), &JsonOptions::PURE), json);
    assert_eq!(json, read("path-info/pure.json"));

    let mut impure =
        NarInfo::new(vpi_impure(), "nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz", "xz");
    impure.file_hash = Some(h1());
    impure.file_size = Some(4029176);
    let json = read("nar-info/impure.json");
    assert_eq!(NarInfo::from_json(&sd(), p_ca(), &json).unwrap(), impure);
    assert_eq!(impure.to_json(&sd(), &JsonOptions::IMPURE), json);
}

#[test]
fn closure_sizes_are_only_added_on_request() {
    let json = vpi_impure().to_json(&sd(), &JsonOptions::IMPURE.with_closure_size(34878));
    let mut expected = read("path-info/impure.json");
    expected["closureSize"] = 34878.into();
    assert_eq!(json, expected);
}
