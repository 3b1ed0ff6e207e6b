//! Path-info JSON (`nix path-info --json` values) on arbitrary text.
//!
//! Properties, for every object `ValidPathInfo::from_json_str` accepts: its impure JSON view
//! reads back to an equal info, its pure view to the same info without the impure fields, and
//! both views, printed and read again, give the same JSON value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_formats::path_info::{JsonOptions, ValidPathInfo};
use nix_formats::store_path::{StoreDir, StorePath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sd = StoreDir::default();
    let path = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-fuzz").unwrap();
    let Ok(info) = ValidPathInfo::from_json_str(&sd, path.clone(), text) else { return };

    let impure = info.to_json(&sd, &JsonOptions::IMPURE);
    let back = ValidPathInfo::from_json(&sd, path.clone(), &impure).expect("impure view reads back");
    assert_eq!(back, info);
    let printed = serde_json::to_string(&impure).unwrap();
    let again = ValidPathInfo::from_json_str(&sd, path.clone(), &printed).expect("printed impure view reads back");
    assert_eq!(again.to_json(&sd, &JsonOptions::IMPURE), impure);

    let pure = info.to_json(&sd, &JsonOptions::PURE);
    let back = ValidPathInfo::from_json(&sd, path, &pure).expect("pure view reads back");
    let mut expected = info.clone();
    expected.deriver = None;
    expected.registration_time = 0;
    expected.ultimate = false;
    expected.sigs.clear();
    assert_eq!(back, expected);
});
