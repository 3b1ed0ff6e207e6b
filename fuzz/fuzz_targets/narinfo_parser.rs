//! The `.narinfo` text parser on arbitrary bytes.
//!
//! Properties, for every input the parser accepts:
//! - printing it (`to_text`) fails only when a value holds a carriage return (the one line break
//!   a parsed value can hold), and otherwise gives text that parses to an equal value and prints
//!   to itself;
//! - `read_from` agrees with `parse`;
//! - its JSON (impure view) reads back to the same cache fields and path info, except what the
//!   JSON form does not carry (`System`, a zero `FileSize`);
//! - the fingerprint exists exactly when the NAR size is known (always, for a parsed narinfo).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_formats::narinfo::{NarInfo, NarInfoError};
use nix_formats::path_info::JsonOptions;
use nix_formats::store_path::StoreDir;

fuzz_target!(|data: &[u8]| {
    let sd = StoreDir::default();
    let from_reader = NarInfo::read_from(&sd, data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(from_reader.is_err());
        return;
    };
    let parsed = NarInfo::parse(&sd, text);
    assert_eq!(parsed, from_reader);
    let Ok(info) = parsed else { return };

    match info.to_text(&sd) {
        Ok(printed) => {
            let again = NarInfo::parse(&sd, &printed).expect("the printed form parses");
            assert_eq!(again, info);
            assert_eq!(again.to_text(&sd).unwrap(), printed, "printing is a fixed point");
        }
        Err(NarInfoError::LineBreakInValue(_)) => assert!(text.contains('\r')),
        Err(e) => panic!("a parsed narinfo fails to print: {e}"),
    }

    assert!(info.fingerprint(&sd).is_ok());

    let json = info.to_json(&sd, &JsonOptions::IMPURE);
    let text = serde_json::to_string(&json).unwrap();
    let back = NarInfo::from_json_str(&sd, info.info.path.clone(), &text).expect("own JSON reads back");
    let mut expected = info.clone();
    expected.system = None;
    expected.file_size = info.file_size.filter(|n| *n != 0);
    assert_eq!(back, expected);
});
