//! Key and signature text (`name:base64`) on arbitrary text.
//!
//! Properties: whatever parses as a public key, secret key or signature prints to text that
//! parses to an equal value (the printed base64 is canonical, while the reader is lenient like
//! Nix's); a parsed secret key's public half is the printed public key; a trusted-key list parses
//! to keys that each parse alone; checking the input as a signature against those keys never
//! panics, and succeeds with `Ok(false)` or an error, never `Ok(true)` for text that is not a
//! valid signature of the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_formats::signature::{PublicKey, SecretKey, Signature, TrustedKeys};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(key) = PublicKey::parse(text) {
        let printed = key.to_string();
        assert_eq!(PublicKey::parse(&printed).unwrap(), key);
    }
    if let Ok(sig) = Signature::parse(text) {
        let printed = sig.to_string();
        let again = Signature::parse(&printed).unwrap();
        assert_eq!(again, sig);
        assert_eq!(again.key_name(), sig.key_name());
    }
    if let Ok(secret) = SecretKey::parse(text) {
        let printed = secret.to_text();
        let again = SecretKey::parse(&printed).unwrap();
        assert_eq!(again, secret);
        assert_eq!(again.public(), secret.public());
        let signature = secret.sign(data);
        assert!(secret.public().verify(data, &signature));
        let trusted: TrustedKeys = [secret.public()].into_iter().collect();
        assert_eq!(trusted.verify(data, &signature.to_string()), Ok(true));
    }
    if let Ok(list) = TrustedKeys::parse_list(text) {
        for key in list.iter() {
            assert_eq!(PublicKey::parse(&key.to_string()).as_ref(), Ok(key));
        }
        // The input as a signature of the fixed text below, which no key in a list can have signed.
        if let Ok(true) = list.verify(b"fuzz", text) {
            panic!("'{text}' verified as a signature of fixed data");
        }
    }
});
