use super::*;
use proptest::prelude::*;

/// RFC 8032, section 7.1, test 1 (empty message).
const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

/// A key made by `nix key generate-secret --key-name test1` (Nix 2.8), its public key from
/// `nix key convert-secret-to-public`, and a signature `nix store sign` made with it.
pub(crate) const NIX_SECRET: &str =
    "test1:z+pjwP0t7V9dj8DwpxXjfIQHQPqj94FkTVzIywf233Y/oo4dfe7QDuQW5Af4Ljl6cUpeWD5ijJFob73+1T/ODg==";
pub(crate) const NIX_PUBLIC: &str = "test1:P6KOHX3u0A7kFuQH+C45enFKXlg+YoyRaG+9/tU/zg4=";
pub(crate) const NIX_FINGERPRINT: &str = "1;/tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top;\
sha256:0yxpp0sxhinfaynw7609jp5dgbf9b39wf45h867f954m9v89bglp;224;\
/tmp/sigx/store/bjj3cl1kbc4ypa2f08704z8cbnr5jv2w-top,/tmp/sigx/store/j2hgg018sszqbylphv1sck0z1kb9f06l-dep";
pub(crate) const NIX_SIG: &str =
    "test1:6TUWu4lLfvVQKCvKXKxG5VS+Bbcn76vfcOTJB+TX4QBqJaYqwFLoIff3MiSsi4ZEpDLFaCW/UTGn5JdiPJItDg==";

fn hex<const N: usize>(s: &str) -> [u8; N] {
    let v = data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
    v.try_into().unwrap()
}

#[test]
fn rfc8032_vector() {
    let sk = SecretKey::from_seed("rfc", &hex::<32>(RFC_SEED)).unwrap();
    assert_eq!(sk.public().bytes(), &hex::<32>(RFC_PUBLIC));
    let sig = sk.sign(b"");
    assert_eq!(sig.bytes(), &hex::<64>(RFC_SIG));
    assert_eq!(sig.key_name(), "rfc");
    assert!(sk.public().verify(b"", &sig));
    assert!(!sk.public().verify(b"x", &sig));
}

#[test]
fn nix_made_key_and_signature() {
    let sk = SecretKey::parse(NIX_SECRET).unwrap();
    assert_eq!(sk.name(), "test1");
    assert_eq!(sk.to_text(), NIX_SECRET);
    assert_eq!(sk.public().to_string(), NIX_PUBLIC);
    assert_eq!(sk.sign(NIX_FINGERPRINT.as_bytes()).to_string(), NIX_SIG);
    let pk = PublicKey::parse(NIX_PUBLIC).unwrap();
    let sig = Signature::parse(NIX_SIG).unwrap();
    assert!(pk.verify(NIX_FINGERPRINT.as_bytes(), &sig));
    // A signature only counts for the key of its name.
    let renamed = PublicKey::parse(&NIX_PUBLIC.replace("test1:", "other:")).unwrap();
    assert!(!renamed.verify(NIX_FINGERPRINT.as_bytes(), &sig));
    assert!(renamed.verify_bytes(NIX_FINGERPRINT.as_bytes(), sig.bytes()));
    // A trailing newline in a key file is tolerated, as by Nix.
    assert_eq!(SecretKey::parse(&format!("{NIX_SECRET}\n")).unwrap(), sk);
}

#[test]
fn parse_errors() {
    use SignatureError as E;
    assert_eq!(PublicKey::parse("abc"), Err(E::MissingColon(TextKind::PublicKey)));
    assert_eq!(
        PublicKey::parse(":P6KOHX3u0A7kFuQH+C45enFKXlg+YoyRaG+9/tU/zg4="),
        Err(E::EmptyName(TextKind::PublicKey))
    );
    assert!(matches!(PublicKey::parse("a b:P6KOHX3u0A7kFuQH+C45enFKXlg+YoyRaG+9/tU/zg4="), Err(E::InvalidName { .. })));
    assert!(matches!(PublicKey::parse("k:P6KOHX3u0A7k*"), Err(E::BadBase64 { .. })));
    assert_eq!(PublicKey::parse("k:aGk="), Err(E::WrongLength { kind: TextKind::PublicKey, name: "k".into(), got: 2 }));
    assert!(matches!(Signature::parse(NIX_PUBLIC), Err(E::WrongLength { got: 32, .. })));
    assert!(matches!(SecretKey::parse(NIX_PUBLIC), Err(E::WrongLength { got: 32, .. })));
    assert!(matches!(SecretKey::parse("k:"), Err(E::WrongLength { got: 0, .. })));
    let long = format!("k:{}", "A".repeat(MAX_TEXT_LEN));
    assert!(matches!(Signature::parse(&long), Err(E::TooLong { .. })));
    // Secret key whose public half belongs to another seed.
    let a = SecretKey::from_seed("k", &[1; 32]).unwrap();
    let b = SecretKey::from_seed("k", &[2; 32]).unwrap();
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&[1; 32]);
    bytes[32..].copy_from_slice(b.public().bytes());
    let forged = format!("k:{}", base64::encode(&bytes));
    assert_eq!(SecretKey::parse(&forged), Err(E::MismatchedPublicHalf("k".into())));
    assert!(SecretKey::parse(&a.to_text()).is_ok());
    // New keys need usable names.
    assert!(matches!(SecretKey::generate(""), Err(E::EmptyName(_))));
    assert!(matches!(SecretKey::generate("a:b"), Err(E::InvalidName { .. })));
    assert!(matches!(SecretKey::generate("a\nb"), Err(E::InvalidName { .. })));
}

#[test]
fn secret_debug_hides_the_key() {
    let sk = SecretKey::parse(NIX_SECRET).unwrap();
    assert_eq!(format!("{sk:?}"), "SecretKey(test1:…)");
}

#[test]
fn generated_keys_work() {
    let sk = SecretKey::generate("cache.example.org-1").unwrap();
    let again = SecretKey::parse(&sk.to_text()).unwrap();
    assert_eq!(again, sk);
    let sig = sk.sign(b"data");
    assert!(again.public().verify(b"data", &sig));
    assert_ne!(SecretKey::generate("cache.example.org-1").unwrap(), sk);
}

#[test]
fn any_32_bytes_are_a_public_key_that_verifies_nothing_bad() {
    // The all-zero encoding decodes to a small-order point: strict verification refuses it.
    let pk = PublicKey::parse(&format!("z:{}", base64::encode(&[0u8; 32]))).unwrap();
    assert!(!pk.verify_bytes(b"", &[0u8; 64]));
    // 0xff… is not a point at all.
    let pk = PublicKey::parse(&format!("z:{}", base64::encode(&[0xffu8; 32]))).unwrap();
    assert!(!pk.verify_bytes(b"", &[0u8; 64]));
}

#[test]
fn trusted_keys_follow_verify_detached() {
    let data = NIX_FINGERPRINT.as_bytes();
    let keys = TrustedKeys::parse_list(&format!("  other:{} \n {NIX_PUBLIC}\t", base64::encode(&[9; 32]))).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.verify(data, NIX_SIG), Ok(true));
    assert_eq!(keys.verify(b"tampered", NIX_SIG), Ok(false));
    // Unknown names, missing colons and empty names are not errors, just not valid.
    assert_eq!(keys.verify(data, &NIX_SIG.replace("test1:", "nobody:")), Ok(false));
    assert_eq!(keys.verify(data, "no colon"), Ok(false));
    assert_eq!(keys.verify(data, &NIX_SIG.replace("test1:", ":")), Ok(false));
    assert_eq!(keys.verify(data, "nobody:!!"), Ok(false));
    // A malformed payload under a trusted name is an error.
    assert!(matches!(keys.verify(data, "test1:!!"), Err(SignatureError::BadBase64 { .. })));
    assert!(matches!(keys.verify(data, "test1:aGk="), Err(SignatureError::WrongLength { got: 2, .. })));
    // The signature of another trusted key over the same name does not verify.
    assert_eq!(keys.verify(data, &NIX_SIG.replace("test1:", "other:")), Ok(false));
    assert_eq!(keys.count_valid(data, [NIX_SIG, "junk", "nobody:x"]), Ok(1));
    assert_eq!(keys.count_valid(data, Vec::<String>::new()), Ok(0));
    assert!(keys.count_valid(data, [NIX_SIG, "test1:x"]).is_err());
    // The first key of a name wins.
    let mut k = TrustedKeys::new();
    assert!(k.insert(PublicKey::parse(NIX_PUBLIC).unwrap()));
    assert!(!k.insert(PublicKey::parse(&format!("test1:{}", base64::encode(&[9; 32]))).unwrap()));
    assert_eq!(k.get("test1").unwrap().to_string(), NIX_PUBLIC);
    assert!(TrustedKeys::parse_list("bad").is_err());
    let many = vec![NIX_PUBLIC; MAX_TRUSTED_KEYS + 1].join(" ");
    assert_eq!(TrustedKeys::parse_list(&many), Err(SignatureError::TooManyKeys));
    assert_eq!(TrustedKeys::parse_list(&many[NIX_PUBLIC.len()..]).unwrap().len(), 1);
    assert!(TrustedKeys::parse_list("").unwrap().is_empty());
}

fn key_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._+-]{1,30}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn secret_key_text_round_trips(name in key_name(), seed in proptest::array::uniform32(any::<u8>())) {
        let sk = SecretKey::from_seed(&name, &seed).unwrap();
        let text = sk.to_text();
        prop_assert_eq!(SecretKey::parse(&text).unwrap().to_text(), text);
    }

    #[test]
    fn sign_then_verify(seed in proptest::array::uniform32(any::<u8>()), data in proptest::collection::vec(any::<u8>(), 0..200), flip in 0usize..64) {
        let sk = SecretKey::from_seed("k", &seed).unwrap();
        let sig = sk.sign(&data);
        prop_assert!(sk.public().verify(&data, &sig));
        let mut bad = *sig.bytes();
        bad[flip] ^= 1;
        prop_assert!(!sk.public().verify_bytes(&data, &bad));
        let keys: TrustedKeys = [sk.public()].into_iter().collect();
        prop_assert_eq!(keys.verify(&data, &sig.to_string()), Ok(true));
    }
}

proptest! {
    #[test]
    fn public_key_text_round_trips(name in key_name(), bytes in proptest::array::uniform32(any::<u8>())) {
        let text = format!("{name}:{}", base64::encode(&bytes));
        let pk = PublicKey::parse(&text).unwrap();
        prop_assert_eq!(pk.bytes(), &bytes);
        prop_assert_eq!(pk.to_string(), text);
    }

    #[test]
    fn signature_text_round_trips(name in key_name(), bytes in proptest::collection::vec(any::<u8>(), 64)) {
        let text = format!("{name}:{}", base64::encode(&bytes));
        let sig = Signature::parse(&text).unwrap();
        prop_assert_eq!(&sig.bytes()[..], &bytes[..]);
        prop_assert_eq!(sig.to_string(), text);
    }

    #[test]
    fn parsers_never_panic(text in "\\PC{0,120}") {
        let _ = SecretKey::parse(&text);
        let _ = PublicKey::parse(&text);
        let _ = Signature::parse(&text);
        let _ = TrustedKeys::new().verify(b"", &text);
    }
}
