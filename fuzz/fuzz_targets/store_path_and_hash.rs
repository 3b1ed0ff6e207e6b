//! Store-path, hash and content-address parsing: no panic on any input, and what parses prints
//! back to something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_formats::content_address::ContentAddress;
use nix_formats::hash::Hash;
use nix_formats::store_path::StoreDir;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sd = StoreDir::default();
    if let Ok(p) = sd.parse(text) {
        assert_eq!(sd.print(&p), text);
    }
    if let Ok(h) = Hash::parse_any(text, None) {
        assert_eq!(Hash::parse_any(&h.to_sri(), None).ok(), Some(h));
    }
    if let Ok(ca) = ContentAddress::parse(text) {
        assert_eq!(ContentAddress::parse(&ca.to_string()).ok(), Some(ca));
    }
});
