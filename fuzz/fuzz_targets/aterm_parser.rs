//! The derivation ATerm parser on arbitrary bytes.
//!
//! Properties, for every input the parser accepts:
//! - printing it (`to_aterm`) succeeds, and the printed text parses to an equal derivation and
//!   prints to itself: the printed form is canonical and a fixed point;
//! - when the input differs from its printed form, it uses one of the forms the parser documents
//!   as accepted but never written (the `DrvWithVersion` form without dynamic inputs and its
//!   `([…],[])` entries, fixed-output hashes not in base16, escapes that print differently, or
//!   a raw line feed, carriage return or tab where the printer escapes them);
//! - its JSON (when every string is UTF-8, so `to_json` succeeds) reads back to an equal
//!   derivation, from the value and from the serialised text;
//! - tighter limits never accept more, and what they accept parses equally with the defaults;
//! - the parser's heap use stays proportional to the input.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use libfuzzer_sys::fuzz_target;
use nix_formats::derivation::{AtermLimits, Derivation, DerivationOutput};
use nix_formats::store_path::StoreDir;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const NAME: &str = "name";

const TIGHT: AtermLimits = AtermLimits { max_size: 2048, max_string_len: 96, max_list_len: 8, max_depth: 3 };

/// Whether `input` (which parsed to `drv`) may print differently: see the module comment.
fn may_be_non_canonical(input: &[u8], drv: &Derivation) -> bool {
    input.starts_with(b"DrvWithVersion(")
        || input.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
        || drv.outputs.values().any(|o| matches!(o, DerivationOutput::CaFixed(_)))
}

fuzz_target!(|data: &[u8]| {
    let sd = StoreDir::default();
    let (parsed, peak) = alloc::peak_during(|| Derivation::parse_aterm(data, NAME, &sd));
    assert!(peak <= 64 * 1024 + 64 * data.len(), "parser used {peak} bytes for {} input bytes", data.len());

    let tight = Derivation::parse_aterm_with_limits(data, NAME, &sd, &TIGHT);
    if let Ok(t) = &tight {
        assert_eq!(Some(t), parsed.as_ref().ok(), "tight limits accepted what the defaults reject");
    }

    let Ok(drv) = parsed else { return };
    assert_eq!(drv.name, NAME);

    let printed = drv.to_aterm(&sd).expect("a parsed derivation prints");
    let again = Derivation::parse_aterm(&printed, NAME, &sd).expect("the printed form parses");
    assert_eq!(again, drv, "the printed form parses to the same derivation");
    assert_eq!(again.to_aterm(&sd).unwrap(), printed, "printing is a fixed point");
    if printed != data {
        assert!(
            may_be_non_canonical(data, &drv),
            "input printed differently without a documented reason:\n{}\n{}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&printed)
        );
    }

    if let Ok(json) = drv.to_json(&sd) {
        let back = Derivation::from_json(&json, &sd).expect("own JSON reads back");
        assert_eq!(back, drv);
        let text = serde_json::to_vec(&json).unwrap();
        assert_eq!(Derivation::from_json_bytes(&text, &sd).expect("own JSON text reads back"), drv);
    }
});
