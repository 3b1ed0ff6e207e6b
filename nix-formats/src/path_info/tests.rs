use super::strategies::path_info;
use super::*;
use crate::hash::Algorithm;
use crate::signature::tests::{NIX_FINGERPRINT, NIX_PUBLIC, NIX_SECRET, NIX_SIG};
use crate::signature::PublicKey;
use proptest::prelude::*;

/// The path `nix store sign` signed in the Nix-made vector of `signature::tests`.
fn nix_signed_info() -> (StoreDir, ValidPathInfo) {
    let sd = StoreDir::new("/tmp/sigx/store");
    let path = sd.parse("/tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top").unwrap();
    let hash = Hash::parse_prefixed("sha256-l76V0E6VlOSOQbAQx9NYya3XypUJmMOtV85G2DW4t3s=").unwrap();
    let mut info = ValidPathInfo::new(path.clone(), hash);
    info.nar_size = 224;
    info.references.insert(sd.parse("/tmp/sigx/store/j2hgg018sszqbylphv1sck0z1kb9f06l-dep").unwrap());
    info.references.insert(path);
    (sd, info)
}

/// `VPI` of the golden data: `P.ca`, content-addressed, referring to `P.bar` and itself.
pub(crate) fn golden_vpi() -> ValidPathInfo {
    let sd = StoreDir::default();
    let path = sd.parse("/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo").unwrap();
    let h1 = Hash::parse_prefixed("sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=").unwrap();
    let mut info = ValidPathInfo::new(path.clone(), h1);
    info.nar_size = 34878;
    info.references.insert(sd.parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar").unwrap());
    info.references.insert(path);
    info.ca =
        Some(ContentAddress::parse("fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh").unwrap());
    info
}

#[test]
fn fingerprint_and_signature_match_nix() {
    let (sd, mut info) = nix_signed_info();
    assert_eq!(info.fingerprint(&sd).unwrap(), NIX_FINGERPRINT);
    let key = SecretKey::parse(NIX_SECRET).unwrap();
    let sig = info.sign(&sd, &key).unwrap();
    assert_eq!(sig.to_string(), NIX_SIG);
    assert!(info.sigs.contains(NIX_SIG));
    let keys: TrustedKeys = [PublicKey::parse(NIX_PUBLIC).unwrap()].into_iter().collect();
    assert_eq!(info.check_signatures(&sd, &keys), Ok(1));
    assert_eq!(info.check_signature(&sd, &keys, NIX_SIG), Ok(true));
    // Any change to the signed fields breaks the signature.
    let mut t = info.clone();
    t.nar_size += 1;
    assert_eq!(t.check_signatures(&sd, &keys), Ok(0));
    let mut t = info.clone();
    t.references.clear();
    assert_eq!(t.check_signatures(&sd, &keys), Ok(0));
    let mut t = info.clone();
    t.nar_hash = Hash::of(Algorithm::Sha256, b"other");
    assert_eq!(t.check_signatures(&sd, &keys), Ok(0));
    // Fields outside the fingerprint do not matter.
    let mut t = info.clone();
    t.deriver = None;
    t.registration_time = 5;
    t.ultimate = false;
    assert_eq!(t.check_signatures(&sd, &keys), Ok(1));
    // No trusted keys: nothing counts.
    assert_eq!(info.check_signatures(&sd, &TrustedKeys::new()), Ok(0));
    // A malformed signature under a trusted name is an error, as in Nix.
    info.sigs.insert("test1:bad".into());
    assert!(matches!(info.check_signatures(&sd, &keys), Err(PathInfoError::Signature(_))));
}

#[test]
fn unknown_nar_size_has_no_fingerprint() {
    let (sd, mut info) = nix_signed_info();
    info.nar_size = 0;
    assert!(matches!(info.fingerprint(&sd), Err(PathInfoError::UnknownNarSize(_))));
    let key = SecretKey::parse(NIX_SECRET).unwrap();
    assert!(info.sign(&sd, &key).is_err());
    let keys: TrustedKeys = [key.public()].into_iter().collect();
    assert_eq!(info.check_signatures(&sd, &keys), Ok(0));
    info.sigs.insert(NIX_SIG.into());
    assert!(matches!(info.check_signatures(&sd, &keys), Err(PathInfoError::UnknownNarSize(_))));
}

#[test]
fn content_addressed_paths_need_no_signatures() {
    let sd = StoreDir::default();
    let info = golden_vpi();
    assert!(info.is_content_addressed(&sd));
    assert_eq!(info.check_signatures(&sd, &TrustedKeys::new()), Ok(MAX_SIGS));
    assert_eq!(info.count_valid_signatures(&sd, &TrustedKeys::new()), Ok(0));
    // Without the self-reference the path would differ.
    let mut t = info.clone();
    t.references.remove(&t.path.clone());
    assert!(!t.is_content_addressed(&sd));
    // Another store directory gives another path.
    assert!(!info.is_content_addressed(&StoreDir::new("/other/store")));
    // No content address at all.
    let mut t = info.clone();
    t.ca = None;
    assert!(!t.is_content_addressed(&sd));
    // A text address cannot refer to itself.
    let mut t = info.clone();
    t.ca = Some(ContentAddress { method: Method::Text, hash: info.ca.clone().unwrap().hash });
    assert!(!t.is_content_addressed(&sd));
}

#[test]
fn text_addressed_path_from_nix() {
    // `builtins.toFile "t" "x"` in a store at /tmp/sigx/store (Nix 2.8).
    let sd = StoreDir::new("/tmp/sigx/store");
    let path = sd.parse("/tmp/sigx/store/avc8rqi6g28pnhpa5nqn155qzmx4lfbj-t").unwrap();
    let mut info = ValidPathInfo::new(path, Hash::of(Algorithm::Sha256, b""));
    info.ca = Some(ContentAddress::parse("text:sha256:10a83a91g1r50bdw8g4hn47m7j7m6angpabwc80l9c16nx11cw9d").unwrap());
    assert!(info.is_content_addressed(&sd));
}

#[test]
fn json_views() {
    let sd = StoreDir::default();
    let mut info = golden_vpi();
    let pure = info.to_json(&sd, &JsonOptions::PURE);
    assert_eq!(pure.as_object().unwrap().len(), 4);
    assert_eq!(pure["ca"], "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh");
    let impure = info.to_json(&sd, &JsonOptions::IMPURE);
    assert_eq!(impure["registrationTime"], serde_json::Value::Null);
    assert_eq!(impure["deriver"], serde_json::Value::Null);
    info.registration_time = 7;
    let with = info.to_json(&sd, &JsonOptions::IMPURE.with_closure_size(99).with_closure_download_size(5));
    assert_eq!(with["registrationTime"], 7);
    assert_eq!(with["closureSize"], 99);
    assert_eq!(with["closureDownloadSize"], 5);
    // Extra keys such as closureSize and Nix 2.8's "path" are ignored when reading.
    let back = ValidPathInfo::from_json(&sd, info.path.clone(), &with).unwrap();
    assert_eq!(back, info);
}

#[test]
fn json_errors() {
    use serde_json::json;
    let sd = StoreDir::default();
    let p = golden_vpi().path;
    let read = |v: serde_json::Value| ValidPathInfo::from_json(&sd, p.clone(), &v);
    let h = "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=";
    assert!(read(json!({"narHash": h, "narSize": 1, "references": []})).is_ok());
    assert_eq!(read(json!([])), Err(JsonError::NotAnObject));
    assert_eq!(read(json!({"narSize": 1, "references": []})), Err(JsonError::MissingKey("narHash")));
    assert_eq!(read(json!({"narHash": h, "references": []})), Err(JsonError::MissingKey("narSize")));
    assert_eq!(read(json!({"narHash": h, "narSize": 1})), Err(JsonError::MissingKey("references")));
    assert!(matches!(
        read(json!({"narHash": h, "narSize": -1, "references": []})),
        Err(JsonError::WrongType { key: "narSize", .. })
    ));
    assert!(matches!(read(json!({"narHash": h, "narSize": 1.5, "references": []})), Err(JsonError::WrongType { .. })));
    // The hash must name its algorithm.
    assert!(matches!(
        read(
            json!({"narHash": "15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527", "narSize": 1, "references": []})
        ),
        Err(JsonError::BadHash { key: "narHash", .. })
    ));
    assert!(matches!(
        read(json!({"narHash": h, "narSize": 1, "references": ["/tmp/x"]})),
        Err(JsonError::BadStorePath { .. })
    ));
    assert!(matches!(read(json!({"narHash": h, "narSize": 1, "references": [1]})), Err(JsonError::WrongType { .. })));
    assert!(matches!(
        read(json!({"narHash": h, "narSize": 1, "references": [], "ca": "x"})),
        Err(JsonError::BadContentAddress(_))
    ));
    assert!(matches!(
        read(json!({"narHash": h, "narSize": 1, "references": [], "ultimate": 1})),
        Err(JsonError::WrongType { .. })
    ));
    assert!(matches!(
        read(json!({"narHash": h, "narSize": 1, "references": [], "signatures": "a"})),
        Err(JsonError::WrongType { .. })
    ));
    assert!(matches!(ValidPathInfo::from_json_str(&sd, p.clone(), "{"), Err(JsonError::Syntax(_))));
    let big = " ".repeat(json::MAX_JSON_LEN + 1);
    assert!(matches!(ValidPathInfo::from_json_str(&sd, p.clone(), &big), Err(JsonError::TooLarge(_))));
}

proptest! {
    #[test]
    fn impure_json_round_trips(info in path_info()) {
        let sd = StoreDir::default();
        let v = info.to_json(&sd, &JsonOptions::IMPURE);
        let text = serde_json::to_string(&v).unwrap();
        let back = ValidPathInfo::from_json_str(&sd, info.path.clone(), &text).unwrap();
        prop_assert_eq!(&back, &info);
        prop_assert_eq!(back.to_json(&sd, &JsonOptions::IMPURE), v);
    }

    #[test]
    fn pure_json_round_trips_the_pure_fields(info in path_info()) {
        let sd = StoreDir::new("/some/other/store");
        let v = info.to_json(&sd, &JsonOptions::PURE);
        let back = ValidPathInfo::from_json(&sd, info.path.clone(), &v).unwrap();
        let mut expected = ValidPathInfo::new(info.path.clone(), info.nar_hash.clone());
        expected.nar_size = info.nar_size;
        expected.references = info.references.clone();
        expected.ca = info.ca.clone();
        prop_assert_eq!(back, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn signing_round_trips(info in path_info(), seed in proptest::array::uniform32(any::<u8>())) {
        let sd = StoreDir::default();
        let mut info = info;
        info.nar_size = info.nar_size.max(1);
        info.ca = None;
        info.sigs.clear();
        let key = SecretKey::from_seed("k", &seed).unwrap();
        info.sign(&sd, &key).unwrap();
        let keys: TrustedKeys = [key.public()].into_iter().collect();
        prop_assert_eq!(info.check_signatures(&sd, &keys), Ok(1));
    }
}
