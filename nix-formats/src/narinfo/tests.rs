use super::*;
use crate::hash::Algorithm;
use crate::path_info::strategies::{hash_of, path_info, sig_text};
use crate::path_info::{JsonError, JsonOptions, MAX_SIGS};
use crate::signature::tests::{NIX_PUBLIC, NIX_SECRET, NIX_SIG};
use crate::signature::PublicKey;
use proptest::prelude::*;

/// Written by Nix 2.8 (`nix copy --to 'file://…?compression=xz&secret-key=…'`).
const NIX_XZ: &str = "StorePath: /tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top
URL: nar/02pyqmh8s1y45f8swxpwghpp76s70gybsj8qwml7vjmy4w32562d.nar.xz
Compression: xz
FileHash: sha256:02pyqmh8s1y45f8swxpwghpp76s70gybsj8qwml7vjmy4w32562d
FileSize: 212
NarHash: sha256:0yxpp0sxhinfaynw7609jp5dgbf9b39wf45h867f954m9v89bglp
NarSize: 224
References: bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top j2hgg018sszqbylphv1sck0z1kb9f06l-dep
Deriver: 6cix2wqzrgjp9qx4srm0anxgpkr9srj6-top.drv
Sig: test1:6TUWu4lLfvVQKCvKXKxG5VS+Bbcn76vfcOTJB+TX4QBqJaYqwFLoIff3MiSsi4ZEpDLFaCW/UTGn5JdiPJItDg==
";

/// Written by Nix 2.8 with `compression=none`: a text-addressed path with no references.
const NIX_CA: &str = "StorePath: /tmp/sigx/store/avc8rqi6g28pnhpa5nqn155qzmx4lfbj-t
URL: nar/0rsv7kag23nvdpy4500mv2m0b4sm4c8fkgqrfsrmv1kgk77bi81c.nar
Compression: none
FileHash: sha256:0rsv7kag23nvdpy4500mv2m0b4sm4c8fkgqrfsrmv1kgk77bi81c
FileSize: 120
NarHash: sha256:0rsv7kag23nvdpy4500mv2m0b4sm4c8fkgqrfsrmv1kgk77bi81c
NarSize: 120
References: 
Sig: test1:PgAU3YD3p+rTP73DikY/ozPrMG/iXi5ufpjVOVebu5+0FmBh9w4m+XdflkgkSaW2q/IIajUN8p79axLu2UJUBw==
CA: text:sha256:10a83a91g1r50bdw8g4hn47m7j7m6angpabwc80l9c16nx11cw9d
";

fn sd() -> StoreDir {
    StoreDir::new("/tmp/sigx/store")
}

fn trusted() -> TrustedKeys {
    [PublicKey::parse(NIX_PUBLIC).unwrap()].into_iter().collect()
}

#[test]
fn nix_written_files_round_trip_and_verify() {
    for text in [NIX_XZ, NIX_CA] {
        let n = NarInfo::parse(&sd(), text).unwrap();
        assert_eq!(n.to_text(&sd()).unwrap(), text);
        assert_eq!(n.count_valid_signatures(&sd(), &trusted()), Ok(1));
    }
    let n = NarInfo::parse(&sd(), NIX_XZ).unwrap();
    assert_eq!(n.file_name(), "bjj3cl1kbc4ypa2f08704z8cbnr5jv2w.narinfo");
    assert_eq!(n.compression, "xz");
    assert_eq!(n.file_size, Some(212));
    assert_eq!(n.info.references.len(), 2);
    assert_eq!(n.info.deriver.as_ref().unwrap().to_string(), "6cix2wqzrgjp9qx4srm0anxgpkr9srj6-top.drv");
    assert!(n.info.sigs.contains(NIX_SIG));
    assert_eq!(n.check_signatures(&sd(), &trusted()), Ok(1));
    let ca = NarInfo::parse(&sd(), NIX_CA).unwrap();
    assert!(ca.info.references.is_empty());
    assert_eq!(ca.check_signatures(&sd(), &TrustedKeys::new()), Ok(MAX_SIGS));
}

#[test]
fn signing_reproduces_nix_signature() {
    let mut n = NarInfo::parse(&sd(), NIX_XZ).unwrap();
    n.info.sigs.clear();
    let sig = n.sign(&sd(), &SecretKey::parse(NIX_SECRET).unwrap()).unwrap();
    assert_eq!(sig.to_string(), NIX_SIG);
    assert_eq!(n.to_text(&sd()).unwrap(), NIX_XZ);
    // Tampering with a signed field makes the Sig line invalid.
    let tampered = NIX_XZ.replace("NarSize: 224", "NarSize: 225");
    let t = NarInfo::parse(&sd(), &tampered).unwrap();
    assert_eq!(t.check_signatures(&sd(), &trusted()), Ok(0));
    // …but not with an unsigned one.
    let moved = NIX_XZ.replace("URL: nar/02", "URL: elsewhere/02");
    assert_eq!(NarInfo::parse(&sd(), &moved).unwrap().check_signatures(&sd(), &trusted()), Ok(1));
}

#[test]
fn old_style_and_lenient_input() {
    // No Compression (means bzip2), a System line, an unknown key, unknown-deriver, SRI hash,
    // extra spaces in References.
    let text = "StorePath: /tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top
URL: nar/x.nar.bz2
NarHash: sha256-l76V0E6VlOSOQbAQx9NYya3XypUJmMOtV85G2DW4t3s=
NarSize: 224
References:  j2hgg018sszqbylphv1sck0z1kb9f06l-dep  
Deriver: unknown-deriver
System: x86_64-linux
Future: whatever
";
    let n = NarInfo::parse(&sd(), text).unwrap();
    assert_eq!(n.compression, DEFAULT_COMPRESSION);
    assert_eq!(n.system.as_deref(), Some("x86_64-linux"));
    assert_eq!(n.info.deriver, None);
    assert_eq!(n.info.references.len(), 1);
    assert_eq!(n.file_hash, None);
    assert_eq!(
        n.to_text(&sd()).unwrap(),
        "StorePath: /tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top
URL: nar/x.nar.bz2
Compression: bzip2
NarHash: sha256:0yxpp0sxhinfaynw7609jp5dgbf9b39wf45h867f954m9v89bglp
NarSize: 224
References: j2hgg018sszqbylphv1sck0z1kb9f06l-dep
System: x86_64-linux
"
    );
    // Empty Compression also means bzip2.
    let n = NarInfo::parse(&sd(), &NIX_XZ.replace("Compression: xz", "Compression: ")).unwrap();
    assert_eq!(n.compression, "bzip2");
}

#[test]
fn parse_errors() {
    use NarInfoError as E;
    let p = |t: &str| NarInfo::parse(&sd(), t);
    assert_eq!(p(""), Err(E::MissingField("StorePath")));
    assert_eq!(p(&NIX_XZ.replace("NarHash: ", "NarHashX: ")), Err(E::MissingField("NarHash")));
    assert_eq!(p(&NIX_XZ.replace("URL: ", "URLX: ")), Err(E::MissingField("URL")));
    let no_url = NIX_XZ.replace("URL: nar/02pyqmh8s1y45f8swxpwghpp76s70gybsj8qwml7vjmy4w32562d.nar.xz", "URL: ");
    assert_eq!(p(&no_url), Err(E::MissingField("URL")));
    assert_eq!(p(&NIX_XZ.replace("NarSize: 224", "NarSize: 0")), Err(E::ZeroNarSize));
    assert_eq!(p(&NIX_XZ.replace("NarSize: 224\n", "")), Err(E::ZeroNarSize));
    assert_eq!(p(&NIX_XZ.replace("NarSize: 224", "NarSize: +224")), Err(E::BadNumber { line: 7, field: "NarSize" }));
    assert_eq!(
        p(&NIX_XZ.replace("FileSize: 212", "FileSize: 99999999999999999999")),
        Err(E::BadNumber { line: 5, field: "FileSize" })
    );
    assert_eq!(p(NIX_XZ.trim_end()), Err(E::MissingNewline(10)));
    assert_eq!(p(&NIX_XZ.replace("Compression: xz", "Compression:xz")), Err(E::MissingSeparator(3)));
    assert_eq!(p(&format!("{NIX_XZ}\n")), Err(E::MissingSeparator(11)));
    assert_eq!(p(&format!("{NIX_XZ}NarSize: 1\n")), Err(E::DuplicateField { line: 11, field: "NarSize" }));
    assert!(matches!(
        p(&NIX_XZ.replace("/tmp/sigx/store/bjj", "/nix/store/bjj")),
        Err(E::BadStorePath { line: 1, .. })
    ));
    assert!(matches!(p(&NIX_XZ.replace("-top j2", "-top /j2")), Err(E::BadStorePath { field: "References", .. })));
    assert!(matches!(p(&NIX_XZ.replace("Deriver: 6", "Deriver: e")), Err(E::BadStorePath { field: "Deriver", .. })));
    assert!(matches!(p(&NIX_XZ.replace("NarHash: sha256:", "NarHash: ")), Err(E::BadHash { field: "NarHash", .. })));
    assert!(matches!(
        p(&NIX_XZ.replace("FileHash: sha256:0", "FileHash: sha256:e")),
        Err(E::BadHash { field: "FileHash", .. })
    ));
    assert!(matches!(p(&format!("{NIX_XZ}CA: nope\n")), Err(E::BadContentAddress { line: 11, .. })));
    // Limits.
    let big = format!("{NIX_XZ}X: {}\n", "a".repeat(MAX_NARINFO_LEN));
    assert_eq!(p(&big), Err(E::TooLarge));
    let long_line = format!("{NIX_XZ}X: {}\n", "a".repeat(MAX_LINE_LEN));
    assert_eq!(p(&long_line), Err(E::LineTooLong(11)));
    let many = format!("{NIX_XZ}{}", "X: y\n".repeat(MAX_LINES));
    assert_eq!(p(&many), Err(E::TooManyLines));
    assert_eq!(NarInfo::read_from(&sd(), &b"\xff: x\n"[..]), Err(E::NotUtf8));
    assert_eq!(NarInfo::read_from(&sd(), big.as_bytes()), Err(E::TooLarge));
    assert_eq!(NarInfo::read_from(&sd(), NIX_XZ.as_bytes()).unwrap(), p(NIX_XZ).unwrap());
}

#[test]
fn printing_refuses_line_breaks() {
    let mut n = NarInfo::parse(&sd(), NIX_XZ).unwrap();
    n.info.sigs.insert("a\nStorePath: evil".into());
    assert_eq!(n.to_text(&sd()), Err(NarInfoError::LineBreakInValue("Sig")));
    let mut n = NarInfo::parse(&sd(), NIX_XZ).unwrap();
    n.url.push('\r');
    assert_eq!(n.to_text(&sd()), Err(NarInfoError::LineBreakInValue("URL")));
}

#[test]
fn json_cache_fields() {
    let n = NarInfo::parse(&sd(), NIX_XZ).unwrap();
    let pure = n.to_json(&sd(), &JsonOptions::PURE);
    assert_eq!(pure, n.info.to_json(&sd(), &JsonOptions::PURE));
    let v = n.to_json(&sd(), &JsonOptions::IMPURE.with_closure_size(3));
    assert_eq!(v["url"], n.url.as_str());
    assert_eq!(v["compression"], "xz");
    assert_eq!(v["downloadHash"], n.file_hash.as_ref().unwrap().to_sri());
    assert_eq!(v["downloadSize"], 212);
    assert_eq!(v["closureSize"], 3);
    assert!(v.get("closureDownloadSize").is_none());
    let back = NarInfo::from_json(&sd(), n.info.path.clone(), &v).unwrap();
    assert_eq!(back, NarInfo { system: None, ..n.clone() });
    // Empty and unknown cache fields are left out.
    let bare = NarInfo::new(n.info.clone(), "", "");
    let v = bare.to_json(&sd(), &JsonOptions::IMPURE);
    for k in ["url", "compression", "downloadHash", "downloadSize"] {
        assert!(v.get(k).is_none(), "{k}");
    }
    let mut h = n.to_json(&sd(), &JsonOptions::IMPURE);
    h["downloadHash"] = "nope".into();
    assert!(matches!(
        NarInfo::from_json(&sd(), n.info.path.clone(), &h),
        Err(JsonError::BadHash { key: "downloadHash", .. })
    ));
}

/// A narinfo whose every field survives the text form.
fn narinfo() -> impl Strategy<Value = NarInfo> {
    (
        path_info(),
        "[a-zA-Z0-9/._-]{1,40}",
        "[a-z0-9]{1,8}",
        proptest::option::of(hash_of(Algorithm::Sha256)),
        proptest::option::of(any::<u64>()),
        proptest::option::of("[a-z0-9_-]{1,20}"),
        1u64..,
    )
        .prop_map(|(mut info, url, compression, file_hash, file_size, system, nar_size)| {
            info.registration_time = 0;
            info.ultimate = false;
            info.nar_size = nar_size;
            NarInfo { info, url, compression, file_hash, file_size, system }
        })
}

proptest! {
    #[test]
    fn text_round_trips(n in narinfo()) {
        let sd = StoreDir::default();
        let text = n.to_text(&sd).unwrap();
        let back = NarInfo::parse(&sd, &text).unwrap();
        prop_assert_eq!(&back, &n);
        prop_assert_eq!(back.to_text(&sd).unwrap(), text);
    }

    #[test]
    fn impure_json_round_trips(n in narinfo(), time in any::<u64>(), ultimate in any::<bool>()) {
        let sd = StoreDir::default();
        let mut n = n;
        n.info.registration_time = time;
        n.info.ultimate = ultimate;
        n.system = None;
        n.file_size = n.file_size.filter(|s| *s != 0);
        let v = n.to_json(&sd, &JsonOptions::IMPURE);
        let text = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(NarInfo::from_json_str(&sd, n.info.path.clone(), &text).unwrap(), n);
    }


    #[test]
    fn parser_never_panics(text in "([A-Za-z]{0,10}(: )?[ -~]{0,60}\n?){0,12}") {
        let _ = NarInfo::parse(&StoreDir::default(), &text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn signed_narinfo_verifies_after_text_round_trip(n in narinfo(), seed in proptest::array::uniform32(any::<u8>()), sig in sig_text()) {
        prop_assume!(!sig.starts_with("cache-1:"));
        let sd = StoreDir::default();
        let mut n = n;
        n.info.sigs.clear();
        n.info.sigs.insert(sig);
        let key = SecretKey::from_seed("cache-1", &seed).unwrap();
        n.sign(&sd, &key).unwrap();
        let back = NarInfo::parse(&sd, &n.to_text(&sd).unwrap()).unwrap();
        let keys: TrustedKeys = [key.public()].into_iter().collect();
        prop_assert_eq!(back.count_valid_signatures(&sd, &keys), Ok(1));
        prop_assert_eq!(back.info.sigs.len(), 2);
    }
}
