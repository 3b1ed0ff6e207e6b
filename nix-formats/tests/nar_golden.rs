//! NAR: Nix's golden archives (testdata README section 8) and differential tests against the real
//! Nix 2.8 (`nix-store --dump`, `nix-store --restore`, `nix nar ls`), which must be installed.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::ffi::OsStr;
use std::io::{Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix_formats::hash::{Algorithm, Hash};
use nix_formats::nar::{self, Event, Limits, ListNode, ReadError, Reader};

const NARS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/nix-master/nars");

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!("{NARS}/{name}")).unwrap()
}

/// Reads the whole archive, streaming contents (`stream`) or letting `next` skip them.
fn read_all(bytes: &[u8], stream: bool) -> Result<u64, ReadError> {
    let mut reader = Reader::new(Cursor::new(bytes), Limits::default());
    while let Some(event) = reader.next()? {
        if stream && matches!(event, Event::Regular { .. }) {
            let mut buf = [0u8; 4096];
            while reader.read_contents(&mut buf)? > 0 {}
        }
    }
    Ok(reader.position())
}

#[test]
fn golden_valid_archive_stops_at_its_end() {
    let mut bytes = golden("regular-one-byte-zero-padding.nar");
    assert_eq!(bytes.len(), 120);
    bytes.extend_from_slice(b"sentinel");
    let mut reader = Reader::new(Cursor::new(&bytes), Limits::default());
    assert_eq!(reader.next().unwrap(), Some(Event::Regular { executable: false, size: 1 }));
    let mut contents = Vec::new();
    reader.contents().read_to_end(&mut contents).unwrap();
    assert_eq!(contents, b"x");
    assert_eq!(reader.next().unwrap(), None);
    assert_eq!(reader.position(), 120);
    let mut rest = Vec::new();
    reader.into_inner().read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"sentinel");
    for stream in [false, true] {
        assert_eq!(read_all(&bytes, stream).unwrap(), 120);
    }
    let entries = nar::list(Cursor::new(&bytes), &Limits::default()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path, b"");
    assert_eq!(entries[0].node, ListNode::Regular { executable: false, size: 1, nar_offset: 96 });
    let (hash, size) = nar::validate_and_hash(Cursor::new(&bytes), Algorithm::Sha256, &Limits::default()).unwrap();
    assert_eq!((hash, size), (Hash::of(Algorithm::Sha256, &bytes[..120]), 120));
    // Our writer produces the same bytes.
    let mut writer = nar::Writer::new(Vec::new());
    writer.regular_bytes(false, b"x").unwrap();
    assert_eq!(writer.finish().unwrap(), &bytes[..120]);
}

#[test]
fn golden_malformed_archives_are_rejected_with_the_right_error() {
    type Check = fn(&ReadError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("regular-one-byte-non-zero-padding.nar", |e| matches!(e, ReadError::NonZeroPadding)),
        ("regular-truncated-padding.nar", |e| matches!(e, ReadError::Truncated)),
        ("regular-truncated-large-contents.nar", |e| matches!(e, ReadError::Truncated)),
        ("invalid-tag-instead-of-contents.nar", |e| {
            matches!(e, ReadError::BadTag { expected: "contents", got } if got == b"AAAAAAAA")
        }),
        ("executable-after-contents.nar", |e| {
            matches!(e, ReadError::BadTag { expected: ")", got } if got == b"executable")
        }),
        ("name-after-node.nar", |e| matches!(e, ReadError::BadTag { expected: "name", got } if got == b"node")),
        ("empty.nar", |e| matches!(e, ReadError::InvalidName { name } if name.is_empty())),
        ("dot.nar", |e| matches!(e, ReadError::InvalidName { name } if name == b".")),
        ("dotdot.nar", |e| matches!(e, ReadError::InvalidName { name } if name == b"..")),
        ("slash.nar", |e| matches!(e, ReadError::InvalidName { name } if name == b"x/y")),
        ("nul-character.nar", |e| matches!(e, ReadError::InvalidName { name } if name == b"f\0o")),
    ];
    for (file, check) in cases {
        let bytes = golden(file);
        for stream in [false, true] {
            let err = read_all(&bytes, stream).unwrap_err();
            assert!(check(&err), "{file} (stream {stream}): {err:?}");
            let truncation = file.contains("truncated");
            assert_eq!(err.is_truncated(), truncation, "{file}");
            assert_eq!(err.is_malformed(), !truncation, "{file}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(nar::restore(Cursor::new(&bytes), &dir.path().join("out"), &Limits::default()).is_err(), "{file}");
    }
}

#[test]
fn golden_directory_archives_decode_when_repaired() {
    // The malformed directory archives differ from a valid one only in their entry name: with the
    // name replaced by `foo` (same length class), they decode to the documented tree.
    let bytes = golden("dot.nar");
    let dot = {
        let mut t = 1u64.to_le_bytes().to_vec();
        t.extend_from_slice(b".\0\0\0\0\0\0\0");
        t
    };
    let at = bytes.windows(16).position(|w| w == dot.as_slice()).unwrap();
    let mut fixed = bytes.clone();
    fixed[at + 8] = b'f';
    let entries = nar::list(Cursor::new(&fixed), &Limits::default()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].node, ListNode::Directory);
    assert_eq!(entries[1].path, b"f");
    let ListNode::Regular { executable: false, size: 6, nar_offset } = entries[1].node else { panic!() };
    assert_eq!(&fixed[nar_offset as usize..nar_offset as usize + 6], b"hello\n");
}

// ---- Differential tests against Nix 2.8 ----

/// Runs a Nix tool on an isolated, throw-away store.
fn nix(tool: &str, sandbox: &Path) -> Command {
    let mut cmd = Command::new(tool);
    for (var, sub) in [("NIX_STORE_DIR", "store"), ("NIX_STATE_DIR", "state"), ("NIX_LOG_DIR", "log"), ("NIX_CONF_DIR", "conf")]
    {
        cmd.env(var, sandbox.join(sub));
    }
    cmd.env("NIX_REMOTE", "local").env("HOME", sandbox);
    cmd
}

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Vec<u8> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("running {cmd:?} (is Nix installed?): {e}"));
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &input).unwrap())
    });
    let output = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    assert!(output.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// A small deterministic pseudo-random byte generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn file(path: &Path, contents: &[u8], mode: u32) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the test trees under `root`; returns their paths.
fn build_trees(root: &Path) -> Vec<PathBuf> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut trees = Vec::new();

    // 1. A single zero-byte file; 2. a single executable file; 3. a symlink as the root.
    let t = root.join("empty-file");
    file(&t, b"", 0o644);
    trees.push(t);
    let t = root.join("exe-file");
    file(&t, b"#!/bin/sh\necho hi\n", 0o755);
    trees.push(t);
    let t = root.join("root-link");
    symlink("../some/where else", &t).unwrap();
    trees.push(t);

    // 4. An empty directory.
    let t = root.join("empty-dir");
    std::fs::create_dir(&t).unwrap();
    trees.push(t);

    // 5. A mixed tree: names that sort differently in byte order than in locales, unicode and
    // non-UTF-8 names, exec bits for group/others only, nesting, a file bigger than the copy buffer.
    let t = root.join("mixed");
    std::fs::create_dir(&t).unwrap();
    for name in ["a", "B", "a.b", "a-b", "a0", "Z", "_x", "日本語", "ümlaut", "with space"] {
        file(&t.join(name), name.as_bytes(), 0o644);
    }
    file(&t.join(OsStr::from_bytes(b"\xff\xfebin")), b"\x00\x01", 0o644);
    file(&t.join("group-exec"), b"g", 0o654);
    file(&t.join("other-exec"), b"o", 0o645);
    file(&t.join("owner-exec"), b"u", 0o744);
    file(&t.join("zero"), b"", 0o755);
    file(&t.join("big"), &rng.bytes(1024 * 1024 + 3), 0o644);
    for len in 1..=17 {
        file(&t.join(format!("pad{len:02}")), &rng.bytes(len), 0o644);
    }
    symlink("a", t.join("link-rel")).unwrap();
    symlink("/abs/olute", t.join("link-abs")).unwrap();
    symlink("dangling/../x", t.join("link-dangling")).unwrap();
    symlink(OsStr::from_bytes(b"\xe2\x98\x83-\xff"), t.join("link-bytes")).unwrap();
    let mut deep = t.join("deep");
    for level in 0..20 {
        std::fs::create_dir(&deep).unwrap();
        file(&deep.join("f"), format!("{level}").as_bytes(), if level % 2 == 0 { 0o755 } else { 0o600 });
        deep = deep.join(format!("d{level}"));
    }
    std::fs::create_dir(&deep).unwrap();
    std::fs::create_dir_all(t.join("e/m/p/t/y")).unwrap();
    trees.push(t);

    // 6. A wide random tree.
    let t = root.join("random");
    std::fs::create_dir(&t).unwrap();
    for i in 0..40 {
        let dir = t.join(format!("dir{}", rng.next() % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let size = (rng.next() % 5000) as usize;
        let mode = if rng.next() % 3 == 0 { 0o755 } else { 0o644 };
        file(&dir.join(format!("f{i}-{}", rng.next() % 1000)), &rng.bytes(size), mode);
    }
    trees.push(t);
    trees
}

#[test]
fn dump_matches_nix_store_dump_and_restores_cross_accept() {
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path().join("trees");
    std::fs::create_dir(&root).unwrap();
    for (i, tree) in build_trees(&root).into_iter().enumerate() {
        let theirs = run(
            {
                let mut c = nix("nix-store", sandbox.path());
                c.arg("--dump").arg(&tree);
                c
            },
            None,
        );
        let mut ours = Vec::new();
        nar::dump_path(&tree, &mut ours).unwrap();
        assert!(ours == theirs, "{}: our NAR differs from nix-store --dump", tree.display());
        let (hash, size) = nar::hash_path(&tree, Algorithm::Sha256).unwrap();
        assert_eq!((hash, size), (Hash::of(Algorithm::Sha256, &theirs), theirs.len() as u64));

        // nix-store --restore accepts our archive, and we accept theirs; both give the same tree.
        let by_nix = sandbox.path().join(format!("restored-by-nix-{i}"));
        run(
            {
                let mut c = nix("nix-store", sandbox.path());
                c.arg("--restore").arg(&by_nix);
                c
            },
            Some(&ours),
        );
        let by_us = sandbox.path().join(format!("restored-by-us-{i}"));
        nar::restore(Cursor::new(&theirs), &by_us, &Limits::default()).unwrap();
        let mut again = Vec::new();
        nar::dump_path(&by_nix, &mut again).unwrap();
        assert!(again == theirs, "{}: restored by Nix, dumped by us", tree.display());
        let mut again = Vec::new();
        nar::dump_path(&by_us, &mut again).unwrap();
        assert!(again == theirs, "{}: restored by us", tree.display());
        assert_same_modes(&by_nix, &by_us);
    }
}

/// The two trees have the same entries with the same permission bits.
fn assert_same_modes(a: &Path, b: &Path) {
    let meta_a = std::fs::symlink_metadata(a).unwrap();
    let meta_b = std::fs::symlink_metadata(b).unwrap();
    assert_eq!(meta_a.file_type(), meta_b.file_type(), "{}", b.display());
    if !meta_a.file_type().is_symlink() {
        assert_eq!(
            meta_a.permissions().mode() & 0o7777,
            meta_b.permissions().mode() & 0o7777,
            "mode of {}",
            b.display()
        );
    }
    if meta_a.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(a).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for name in names {
            assert_same_modes(&a.join(&name), &b.join(&name));
        }
    }
}

#[test]
fn list_matches_nix_nar_ls_json() {
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path().join("trees");
    std::fs::create_dir(&root).unwrap();
    let trees = build_trees(&root);
    // The random tree and the mixed tree, minus its non-UTF-8 names (Nix's JSON cannot hold them).
    let mixed = &trees[4];
    std::fs::remove_file(mixed.join(OsStr::from_bytes(b"\xff\xfebin"))).unwrap();
    std::fs::remove_file(mixed.join("link-bytes")).unwrap();
    for tree in [mixed, &trees[5], &trees[1]] {
        let mut bytes = Vec::new();
        nar::dump_path(tree, &mut bytes).unwrap();
        let nar_file = sandbox.path().join("t.nar");
        std::fs::write(&nar_file, &bytes).unwrap();
        let json = run(
            {
                let mut c = nix("nix", sandbox.path());
                c.args(["--extra-experimental-features", "nix-command", "nar", "ls", "--json", "-R"]).arg(&nar_file).arg("/");
                c
            },
            None,
        );
        let theirs: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let entries = nar::list(Cursor::new(&bytes), &Limits::default()).unwrap();
        assert_eq!(to_nix_json(&entries, b""), theirs, "{}", tree.display());
    }
}

/// Nix's `nar ls --json -R` view of the node at `path` in a listing.
fn to_nix_json(entries: &[nar::ListEntry], path: &[u8]) -> serde_json::Value {
    use serde_json::json;
    let entry = entries.iter().find(|e| e.path == path).unwrap();
    match &entry.node {
        ListNode::Regular { executable, size, nar_offset } => {
            let mut v = json!({"type": "regular", "size": size, "narOffset": nar_offset});
            if *executable {
                v["executable"] = json!(true);
            }
            v
        }
        ListNode::Symlink { target } => json!({"type": "symlink", "target": String::from_utf8(target.clone()).unwrap()}),
        ListNode::Directory => {
            let mut children = serde_json::Map::new();
            for child in entries {
                let Some(rest) = child_name(&child.path, path) else { continue };
                children.insert(String::from_utf8(rest.to_vec()).unwrap(), to_nix_json(entries, &child.path));
            }
            json!({"type": "directory", "entries": children})
        }
    }
}

/// The name of `child` if it is a direct entry of the directory `parent`.
fn child_name<'a>(child: &'a [u8], parent: &[u8]) -> Option<&'a [u8]> {
    let rest = if parent.is_empty() {
        child
    } else {
        child.strip_prefix(parent)?.strip_prefix(b"/")?
    };
    (!rest.is_empty() && !rest.contains(&b'/')).then_some(rest)
}
