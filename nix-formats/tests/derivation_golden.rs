//! Derivations against golden data: upstream Nix 2.26.3's test files (shared/testdata, section 6
//! of its README) and `nix derivation show` output captured from a real Nix 2.26.3
//! (tests/data/nix-2.26.3-show, see its README).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use nix_formats::content_address::{ContentAddress, Method, MethodAlgo};
use nix_formats::derivation::{
    check_output_paths, derivation_show_json, fill_output_paths, AtermErrorKind, Derivation, DerivationOutput,
    DirectoryReader, DrvHashCache, InputOutputs,
};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::{StoreDir, StorePath};
use serde_json::Value;

const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-2.26.3/derivation");
const RECORDED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nix-2.26.3-show");

fn read(dir: &str, file: &str) -> Vec<u8> {
    let path = Path::new(dir).join(file);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn json(dir: &str, file: &str) -> Value {
    serde_json::from_slice(&read(dir, file)).unwrap()
}

fn sp(full: &str) -> StorePath {
    StoreDir::default().parse(full).unwrap()
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Parses an upstream `.drv`, checks that it prints back byte for byte, and returns it.
fn parse_round_trip(file: &str, name: &str) -> Derivation {
    let sd = StoreDir::default();
    let text = read(UPSTREAM, file);
    let drv = Derivation::parse_aterm(&text, name, &sd).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(drv.to_aterm(&sd).unwrap(), text, "{file} does not print back identically");
    drv
}

/// Checks a derivation against its JSON twin in both directions.
fn check_json_twin(drv: &Derivation, file: &str) {
    let sd = StoreDir::default();
    let expected = json(UPSTREAM, file);
    assert_eq!(drv.to_json(&sd).unwrap(), expected, "{file}");
    assert_eq!(&Derivation::from_json(&expected, &sd).unwrap(), drv, "{file}");
}

fn simple_expected(name: &str) -> Derivation {
    Derivation {
        name: name.into(),
        outputs: BTreeMap::new(),
        input_drvs: [(sp("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep2.drv"), InputOutputs::of(["cat", "dog"]))].into(),
        input_srcs: [sp("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep1")].into(),
        system: bytes("wasm-sel4"),
        builder: bytes("foo"),
        args: vec![bytes("bar"), bytes("baz")],
        env: [(bytes("BIG_BAD"), bytes("WOLF"))].into(),
    }
}

#[test]
fn simple() {
    let drv = parse_round_trip("simple.drv", "simple-derivation");
    assert_eq!(drv, simple_expected("simple-derivation"));
    assert!(read(UPSTREAM, "simple.drv").starts_with(b"Derive("));
    check_json_twin(&drv, "simple.json");
}

#[test]
fn dynamic_derivation_deps() {
    let drv = parse_round_trip("dynDerivationDeps.drv", "dyn-dep-derivation");
    let mut expected = simple_expected("dyn-dep-derivation");
    let node = expected.input_drvs.values_mut().next().unwrap();
    node.dynamic_outputs.insert("cat".into(), InputOutputs::of(["kitten"]));
    node.dynamic_outputs.insert("goose".into(), InputOutputs::of(["gosling"]));
    assert_eq!(drv, expected);
    assert_eq!(drv.required_experimental_features(), ["dynamic-derivations"]);
    check_json_twin(&drv, "dynDerivationDeps.json");
}

#[test]
fn bad_files_are_rejected() {
    let sd = StoreDir::default();
    let e = Derivation::parse_aterm(&read(UPSTREAM, "bad-version.drv"), "x", &sd).unwrap_err();
    assert_eq!(e.kind, AtermErrorKind::UnknownVersion("invalid-version".into()));
    assert_eq!(e.offset, 15);
    let e = Derivation::parse_aterm(&read(UPSTREAM, "bad-old-version-dyn-deps.drv"), "x", &sd).unwrap_err();
    assert_eq!(e.kind, AtermErrorKind::DynamicInputsInOldForm);
    assert_eq!(&read(UPSTREAM, "bad-old-version-dyn-deps.drv")[e.offset..e.offset + 2], b"([");
}

#[test]
fn single_outputs() {
    let sd = StoreDir::default();
    let x = Hash::parse_any("sha256:894517c9163c896ec31a2adbd33c0681fd5f45b2c0ef08a64c92a03fb97f390f", None).unwrap();
    let nar = MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 };
    let cases = [
        (
            "output-inputAddressed.json",
            DerivationOutput::InputAddressed(sp("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name-output-name")),
            Some("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name-output-name"),
        ),
        (
            "output-caFixedFlat.json",
            DerivationOutput::CaFixed(ContentAddress { method: Method::Flat, hash: x.clone() }),
            Some("/nix/store/rhcg9h16sqvlbpsa6dqm57sbr2al6nzg-drv-name-output-name"),
        ),
        (
            "output-caFixedNAR.json",
            DerivationOutput::CaFixed(ContentAddress { method: Method::Nar, hash: x.clone() }),
            Some("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name-output-name"),
        ),
        (
            "output-caFixedText.json",
            DerivationOutput::CaFixed(ContentAddress { method: Method::Text, hash: x.clone() }),
            Some("/nix/store/6s1zwabh956jvhv4w9xcdb5jiyanyxg1-drv-name-output-name"),
        ),
        ("output-caFloating.json", DerivationOutput::CaFloating(nar), None),
        ("output-deferred.json", DerivationOutput::Deferred, None),
        ("output-impure.json", DerivationOutput::Impure(nar), None),
    ];
    for (file, expected, path) in cases {
        let value = json(UPSTREAM, file);
        let parsed = DerivationOutput::from_json(&value, &sd, "drv-name", "output-name").unwrap();
        assert_eq!(parsed, expected, "{file}");
        assert_eq!(expected.to_json(&sd, "drv-name", "output-name").unwrap(), value, "{file}");
        let computed = expected.path(&sd, "drv-name", "output-name").unwrap();
        assert_eq!(computed.map(|p| sd.print(&p)).as_deref(), path, "{file}");
    }
    // A fixed output whose path does not follow from its hash is refused.
    let mut value = json(UPSTREAM, "output-caFixedFlat.json");
    value["path"] = "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name-output-name".into();
    assert!(DerivationOutput::from_json(&value, &sd, "drv-name", "output-name").is_err());
}

#[test]
fn advanced_attributes() {
    let sd = StoreDir::default();
    for stem in [
        "advanced-attributes-defaults",
        "advanced-attributes-structured-attrs-defaults",
        "advanced-attributes-structured-attrs",
    ] {
        let drv = parse_round_trip(&format!("{stem}.drv"), stem);
        check_json_twin(&drv, &format!("{stem}.json"));
        assert_eq!(drv.system, b"my-system");
        assert_eq!(drv.args, vec![bytes("-c"), bytes("echo hello > $out")]);
    }

    let drv = parse_round_trip("advanced-attributes.drv", "advanced-attributes");
    assert_eq!(
        drv.outputs["out"],
        DerivationOutput::InputAddressed(sp("/nix/store/33a6fdmn8q9ih9d7npbnrxn2q56a4l8q-advanced-attributes"))
    );
    let inputs: Vec<String> = drv.input_drvs.keys().map(|p| sd.print(p)).collect();
    assert_eq!(
        inputs,
        [
            "/nix/store/4xm4wccqsvagz9gjksn24s7rip2fdy7v-foo.drv",
            "/nix/store/plsq5jbr5nhgqwcgb2qxw7jchc09dnl8-bar.drv"
        ]
    );
    assert_eq!(drv.env[&bytes("requiredSystemFeatures")], b"rainbow uid-range");
    assert_eq!(drv.env[&bytes("allowSubstitutes")], b"");

    // Without inputs, the output paths can be recomputed: they match the files.
    for stem in ["advanced-attributes-defaults", "advanced-attributes-structured-attrs-defaults"] {
        let drv = parse_round_trip(&format!("{stem}.drv"), stem);
        let drv_path = drv.drv_path(&sd).unwrap();
        let mut reader = DirectoryReader::new(UPSTREAM, sd.clone());
        check_output_paths(&drv, &drv_path, &sd, &mut DrvHashCache::new(), &mut reader).unwrap();
        let mut blank = drv.clone();
        for output in blank.outputs.values_mut() {
            *output = DerivationOutput::Deferred;
        }
        fill_output_paths(&mut blank, &sd, &mut DrvHashCache::new(), &mut reader).unwrap();
        assert_eq!(blank, drv);
    }
}

/// The recorded `.drv` files, by store path.
fn recorded_store() -> BTreeMap<StorePath, (PathBuf, Vec<u8>)> {
    let dir = Path::new(RECORDED).join("store");
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let base = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = fs::read(&path).unwrap();
        files.insert(StorePath::from_base_name(&base).unwrap(), (path, bytes));
    }
    files
}

fn parse_recorded(sp: &StorePath, bytes: &[u8]) -> Derivation {
    let name = Derivation::name_from_path(sp).unwrap();
    Derivation::parse_aterm(bytes, name, &StoreDir::default()).unwrap_or_else(|e| panic!("{sp}: {e}"))
}

#[test]
fn recorded_drvs_round_trip_and_hash() {
    let sd = StoreDir::default();
    let store = recorded_store();
    assert_eq!(store.len(), 21);
    let mut reader = DirectoryReader::new(Path::new(RECORDED).join("store"), sd.clone());
    let mut cache = DrvHashCache::new();
    let mut kinds = HashSet::new();
    for (path, (file, bytes)) in &store {
        let drv = parse_recorded(path, bytes);
        assert_eq!(&drv.to_aterm(&sd).unwrap(), bytes, "{} does not print back identically", file.display());
        assert_eq!(&drv.drv_path(&sd).unwrap(), path, "{}: wrong .drv path", file.display());
        check_output_paths(&drv, path, &sd, &mut cache, &mut reader).unwrap_or_else(|e| panic!("{path}: {e}"));

        // What `derivationStrict` does: from blank outputs, filling in gives the file's derivation.
        let mut blank = drv.clone();
        for (name, output) in blank.outputs.iter_mut() {
            if matches!(output, DerivationOutput::InputAddressed(_)) {
                *output = DerivationOutput::Deferred;
            }
            blank.env.remove(name.as_bytes());
        }
        fill_output_paths(&mut blank, &sd, &mut cache, &mut reader).unwrap();
        assert_eq!(blank, drv, "{path}: filling in outputs differs");

        for output in drv.outputs.values() {
            kinds.insert(std::mem::discriminant(output));
        }
    }
    assert_eq!(kinds.len(), 5, "every output kind is covered");
}

#[test]
fn recorded_show_output_matches_byte_for_byte() {
    let sd = StoreDir::default();
    let store = recorded_store();
    for file in ["show-all.json", "show-recursive-chain.json"] {
        let expected = read(RECORDED, file);
        let value: Value = serde_json::from_slice(&expected).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let drvs: Vec<(String, Derivation)> = keys
            .iter()
            .map(|k| {
                let p = sd.parse(k).unwrap();
                (k.to_string(), parse_recorded(&p, &store[&p].1))
            })
            .collect();
        // Reverse the order: the printer must sort by drv path itself.
        let text = derivation_show_json(drvs.iter().rev().map(|(k, d)| (k.clone(), d)), &sd).unwrap();
        assert_eq!(text, String::from_utf8(expected).unwrap(), "{file}");

        // And back (`nix derivation add`): the JSON gives the same derivation at the same path.
        for (key, drv) in &drvs {
            let back = Derivation::from_json(&value[key.as_str()], &sd).unwrap();
            assert_eq!(&back, drv, "{key}");
            assert_eq!(sd.print(&back.drv_path(&sd).unwrap()), *key);
        }
    }
    let recursive = json(RECORDED, "show-recursive-chain.json");
    assert!(recursive.as_object().unwrap().len() > 5);
}

#[test]
fn recorded_invalid_utf8_fails_like_nix() {
    let sd = StoreDir::default();
    let base = String::from_utf8(read(RECORDED, "invalid-utf8.path")).unwrap();
    let path = StorePath::from_base_name(base.trim()).unwrap();
    let text = read(RECORDED, "invalid-utf8.drv");
    let drv = parse_recorded(&path, &text);
    assert_eq!(drv.to_aterm(&sd).unwrap(), text);
    assert_eq!(drv.drv_path(&sd).unwrap(), path);
    assert!(drv.env[&bytes("value")].contains(&0xff));
    let err = derivation_show_json([(sd.print(&path), &drv)], &sd).unwrap_err();
    let stderr = String::from_utf8(read(RECORDED, "show-invalid-utf8.stderr")).unwrap();
    assert_eq!(format!("error: {err}\n"), stderr);
}

