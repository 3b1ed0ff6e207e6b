//! Restoring arbitrary bytes as a NAR into a fresh directory, then dumping it back.
//!
//! Properties: `restore` succeeds exactly when `validate_and_hash` does (the file system under
//! the fuzzer's scratch directory accepts every valid archive within the limits), and dumping
//! the restored tree with `dump_path` gives back exactly the archive's bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nix_formats::hash::Algorithm;
use nix_formats::nar::{self, Limits};

/// Tight limits; paths stay far below `PATH_MAX` even below the temporary directory.
const LIMITS: Limits = Limits { max_depth: 12, max_name_len: 64, max_target_len: 256, max_path_len: 320 };

/// A scratch directory for this fuzzing process under `fuzz/target` (libFuzzer ends the process
/// with `exit`, so a temporary directory would never be removed). Each input is restored into
/// `root` inside it, which is removed again before the next input.
fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/nar_restore-scratch")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dest: PathBuf = base_dir().join("root");
    let validated = nar::validate_and_hash(data, Algorithm::Sha256, &LIMITS);
    let restored = nar::restore(data, &dest, &LIMITS);
    match validated {
        Ok((_, size)) => {
            restored.unwrap();
            let mut dumped = Vec::new();
            nar::dump_path(&dest, &mut dumped).unwrap();
            assert_eq!(dumped, &data[..size as usize]);
        }
        Err(_) => assert!(restored.is_err()),
    }
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dest).unwrap(),
        Ok(_) => std::fs::remove_file(&dest).unwrap(),
        Err(_) => {}
    }
});
