//! Differential tests: `casnix` against the real Nix (Debian's nix-bin) on generated file trees.
//!
//! For each tree, the NAR bytes, the NAR hashes in every algorithm and encoding Nix 2.8 prints,
//! and the store paths of `nix-store --add` / `--add-fixed` must be identical.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::path::Path;

use common::{assert_bytes_eq, casnix, make_large_tree, make_tree, run_ok, NixStore};

const ALGOS: [&str; 4] = ["md5", "sha1", "sha256", "sha512"];

/// Compares everything for one tree; `i` picks which algorithm and flags to try.
fn check_tree(nix: &NixStore, path: &Path, i: u64) {
    let what = |op: &str| format!("{op} of {}", path.display());

    // NAR serialisation.
    let ours = run_ok(casnix().args(["nar", "pack"]).arg(path));
    let theirs = run_ok(nix.cmd("nix-store").arg("--dump").arg(path));
    assert_bytes_eq(&ours, &theirs, &what("nar pack"));

    // NAR hash, in the algorithm and encoding this index selects.
    let algo = ALGOS[(i % 4) as usize];
    let base32 = i.is_multiple_of(3);
    let mut ours_cmd = casnix();
    ours_cmd.args(["hash", "path", "--type", algo]);
    let mut theirs_cmd = nix.cmd("nix-hash");
    theirs_cmd.args(["--type", algo]);
    if base32 {
        ours_cmd.arg("--base32");
        theirs_cmd.arg("--base32");
    }
    if i % 5 == 1 {
        ours_cmd.arg("--truncate");
        theirs_cmd.arg("--truncate");
    }
    assert_eq!(run_ok(ours_cmd.arg(path)), run_ok(theirs_cmd.arg(path)), "{}", what("hash path"));

    // The store path of `nix-store --add`.
    let ours = run_ok(casnix().args(["store-path", "add"]).arg(path));
    let theirs = run_ok(nix.cmd("nix-store").arg("--add").arg(path));
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{}", what("store-path add"));

    // `--add-fixed --recursive` in the selected algorithm.
    let ours = run_ok(casnix().args(["store-path", "add-fixed", "--recursive", algo]).arg(path));
    let theirs = run_ok(nix.cmd("nix-store").args(["--add-fixed", "--recursive", algo]).arg(path));
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{}", what("add-fixed -r"));

    // Flat hashing and flat fixed paths apply to regular files.
    let meta = std::fs::symlink_metadata(path).expect("stat");
    if meta.is_file() {
        let ours = run_ok(casnix().args(["hash", "file", "--type", algo]).arg(path));
        let theirs = run_ok(nix.cmd("nix-hash").args(["--flat", "--type", algo]).arg(path));
        assert_eq!(ours, theirs, "{}", what("hash file"));
        let ours = run_ok(casnix().args(["store-path", "add-fixed", algo]).arg(path));
        let theirs = run_ok(nix.cmd("nix-store").args(["--add-fixed", algo]).arg(path));
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{}", what("add-fixed"));
    }

    // Unpacking Nix's NAR and packing it again gives the same bytes.
    let nar = run_ok(nix.cmd("nix-store").arg("--dump").arg(path));
    let dest = nix.dir.path().join(format!("unpacked{i}"));
    let mut unpack = casnix();
    unpack.args(["nar", "unpack"]).arg(&dest).stdin(std::process::Stdio::piped());
    let status = pipe_into(&mut unpack, &nar);
    assert!(status.success(), "{}", what("nar unpack"));
    let repacked = run_ok(nix.cmd("nix-store").arg("--dump").arg(&dest));
    assert_bytes_eq(&repacked, &nar, &what("nar unpack + nix-store --dump"));
}

/// Runs `cmd` with `input` on its stdin.
fn pipe_into(cmd: &mut std::process::Command, input: &[u8]) -> std::process::ExitStatus {
    use std::io::Write;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait().expect("wait")
}

fn check_range(range: std::ops::Range<u64>) {
    let nix = NixStore::new();
    let trees = tempfile::tempdir().expect("tempdir");
    for i in range {
        let path = make_tree(trees.path(), i);
        check_tree(&nix, &path, i);
    }
}

#[test]
fn trees_000_to_049() {
    check_range(0..50);
}

#[test]
fn trees_050_to_099() {
    check_range(50..100);
}

#[test]
fn trees_100_to_149() {
    check_range(100..150);
}

#[test]
fn trees_150_to_199() {
    check_range(150..200);
}

#[test]
fn large_files() {
    let nix = NixStore::new();
    let trees = tempfile::tempdir().expect("tempdir");
    // Just over 100 MiB, and a size that is not a multiple of 8 (NAR padding).
    let big = make_large_tree(trees.path(), "big", (100 << 20) + 13);
    check_tree(&nix, &big, 2);
    check_tree(&nix, &big.join("big.bin"), 0);
}

#[test]
fn non_default_store_dir() {
    let nix = NixStore::new();
    let trees = tempfile::tempdir().expect("tempdir");
    let store_dir = nix.dir.path().join("other/store");
    for i in [0u64, 5, 7, 9] {
        let path = make_tree(trees.path(), 1000 + i);
        let ours = run_ok(casnix().env("NIX_STORE_DIR", &store_dir).args(["store-path", "add"]).arg(&path));
        let theirs = run_ok(nix.cmd_with_store_dir("nix-store", &store_dir).arg("--add").arg(&path));
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        assert!(String::from_utf8_lossy(&ours).starts_with(store_dir.to_str().expect("utf-8 path")));
    }
}

#[test]
fn add_with_name_matches_nix_add_to_store() {
    // `nix-store --add` names the path after the file; `--name` gives the path Nix computes for
    // the same contents under another name (`builtins.path { name = …; }`).
    let nix = NixStore::new();
    let trees = tempfile::tempdir().expect("tempdir");
    let path = make_tree(trees.path(), 5);
    let renamed = trees.path().join("other-name");
    std::fs::rename(&path, &renamed).expect("rename");
    let theirs = run_ok(nix.cmd("nix-store").arg("--add").arg(&renamed));
    let moved_back = trees.path().join("tree5");
    std::fs::rename(&renamed, &moved_back).expect("rename back");
    let ours = run_ok(casnix().args(["store-path", "add", "--name", "other-name"]).arg(&moved_back));
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
}

/// The generated trees must contain everything the comparisons are meant to cover; otherwise a
/// change to the generator could quietly weaken every test above.
#[test]
fn generated_trees_cover_every_feature() {
    use std::os::unix::fs::PermissionsExt;
    #[derive(Default, Debug)]
    struct Seen {
        executables: u32,
        symlinks: u32,
        empty_dirs: u32,
        empty_files: u32,
        non_utf8_names: u32,
        unicode_names: u32,
        max_depth: usize,
        max_file: u64,
    }
    fn walk(p: &Path, depth: usize, seen: &mut Seen) {
        let meta = std::fs::symlink_metadata(p).expect("stat");
        seen.max_depth = seen.max_depth.max(depth);
        if let Some(name) = p.file_name() {
            match name.to_str() {
                None => seen.non_utf8_names += 1,
                Some(s) if !s.is_ascii() => seen.unicode_names += 1,
                Some(_) => {}
            }
        }
        if meta.file_type().is_symlink() {
            seen.symlinks += 1;
        } else if meta.is_dir() {
            let entries: Vec<_> = std::fs::read_dir(p).expect("readdir").map(|e| e.expect("entry").path()).collect();
            if entries.is_empty() {
                seen.empty_dirs += 1;
            }
            for e in entries {
                walk(&e, depth + 1, seen);
            }
        } else {
            if meta.permissions().mode() & 0o100 != 0 {
                seen.executables += 1;
            }
            if meta.len() == 0 {
                seen.empty_files += 1;
            }
            seen.max_file = seen.max_file.max(meta.len());
        }
    }
    let trees = tempfile::tempdir().expect("tempdir");
    let mut seen = Seen::default();
    for i in 0..200 {
        walk(&make_tree(trees.path(), i), 0, &mut seen);
    }
    let s = &seen;
    eprintln!("generated trees: {s:?}");
    assert!(s.executables >= 50 && s.symlinks >= 50 && s.empty_dirs >= 20 && s.empty_files >= 20, "{s:?}");
    assert!(s.non_utf8_names >= 5 && s.unicode_names >= 20, "{s:?}");
    assert!(s.max_depth >= 50, "{s:?}");
    assert!(s.max_file >= 1 << 20, "{s:?}");
    // Files over 100 MiB are covered by `large_files`.
}
