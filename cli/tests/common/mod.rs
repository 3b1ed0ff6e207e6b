//! Shared pieces of the differential tests: a deterministic generator of file trees, an isolated
//! store for the real Nix, and helpers to run both tools.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The casnix binary under test.
pub fn casnix() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casnix"))
}

/// Runs a command, asserting success, and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a command and returns everything it produced.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// SplitMix64: a small deterministic generator, so every run builds the same trees.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Names that exercise sorting and encoding: ASCII, unicode, raw non-UTF-8 bytes, dots, spaces.
const NAME_POOL: &[&[u8]] = &[
    b"a", b"B", b"z", b"file", b"file.txt", b".hidden", b"..dots", b"with space", b"tab\there",
    b"-dash", b"_under", b"0", b"9", b"\xc3\xa9t\xc3\xa9", "日本語".as_bytes(), "🦀".as_bytes(),
    b"\xff\xferaw", b"UPPER", b"lower", b"a.b.c", b"newline\nname", b"q?=+",
];

fn pick_name(rng: &mut Rng, used: &mut Vec<Vec<u8>>) -> Vec<u8> {
    loop {
        let mut name = NAME_POOL[rng.below(NAME_POOL.len() as u64) as usize].to_vec();
        if rng.chance(50) {
            name.extend_from_slice(format!("{}", rng.below(1000)).as_bytes());
        }
        if !used.contains(&name) {
            used.push(name.clone());
            return name;
        }
    }
}

/// Size classes for regular files, from empty to large.
fn pick_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=9 => 0,
        10..=59 => rng.below(200) as usize,
        60..=89 => rng.below(70_000) as usize,
        _ => rng.below(3 << 20) as usize,
    }
}

fn write_file(path: &Path, size: usize, executable: bool, rng: &mut Rng) {
    let mut f = fs::File::create(path).expect("create file");
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write file");
        left -= n;
    }
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn random_target(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => b"/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-dangling".to_vec(),
        1 => b"../up/there".to_vec(),
        2 => "unicode-→-target".as_bytes().to_vec(),
        3 => vec![b'x'; 1 + rng.below(300) as usize],
        4 => b"a".to_vec(),
        _ => b"./relative/path with spaces".to_vec(),
    }
}

fn fill_dir(dir: &Path, depth: u32, rng: &mut Rng, budget: &mut u32) {
    let count = rng.below(8);
    let mut used = Vec::new();
    for _ in 0..count {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let name = pick_name(rng, &mut used);
        let path = dir.join(std::ffi::OsStr::from_bytes(&name));
        match rng.below(10) {
            0..=4 => write_file(&path, pick_size(rng), rng.chance(30), rng),
            5 | 6 => symlink(std::ffi::OsStr::from_bytes(&random_target(rng)), &path).expect("symlink"),
            _ => {
                fs::create_dir(&path).expect("mkdir");
                if depth < 6 {
                    fill_dir(&path, depth + 1, rng, budget);
                }
            }
        }
    }
}

/// Builds tree number `i` under `root` and returns its path. Trees vary by index: plain files,
/// symlinks, empty directories, deep chains, wide directories and random mixtures.
pub fn make_tree(root: &Path, i: u64) -> PathBuf {
    let mut rng = Rng::new(0x5eed ^ i.wrapping_mul(0x1000_0001));
    let path = root.join(format!("tree{i}"));
    match i % 10 {
        0 => write_file(&path, pick_size(&mut rng), rng.chance(50), &mut rng),
        1 => symlink(std::ffi::OsStr::from_bytes(&random_target(&mut rng)), &path).expect("symlink"),
        2 => fs::create_dir(&path).expect("mkdir"),
        3 => {
            // A deep chain of directories ending in a file.
            let mut p = path.clone();
            for d in 0..(20 + rng.below(80)) {
                p = p.join(format!("d{d}"));
            }
            fs::create_dir_all(&p).expect("mkdir -p");
            write_file(&p.join("leaf"), 10, false, &mut rng);
        }
        4 => {
            // A wide directory with names that sort differently as bytes than as text.
            fs::create_dir(&path).expect("mkdir");
            for n in 0..(50 + rng.below(300)) {
                write_file(&path.join(format!("f{n}")), rng.below(64) as usize, n % 7 == 0, &mut rng);
            }
        }
        _ => {
            fs::create_dir(&path).expect("mkdir");
            let mut budget = 60;
            fill_dir(&path, 0, &mut rng, &mut budget);
        }
    }
    path
}

/// A directory holding one file of `size` bytes (for the large-file cases).
pub fn make_large_tree(root: &Path, name: &str, size: usize) -> PathBuf {
    let mut rng = Rng::new(size as u64);
    let path = root.join(name);
    fs::create_dir(&path).expect("mkdir");
    write_file(&path.join("big.bin"), size, false, &mut rng);
    write_file(&path.join("small"), 3, true, &mut rng);
    path
}

/// An isolated local store for the real Nix, under a temporary directory.
pub struct NixStore {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
}

impl NixStore {
    /// A fresh store with the default logical store directory `/nix/store`, kept physically under a
    /// temporary directory (a "chroot store").
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("conf")).expect("mkdir conf");
        fs::write(
            dir.path().join("conf/nix.conf"),
            "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n",
        )
        .expect("write nix.conf");
        Self { dir }
    }

    /// A Nix command (`nix-store`, `nix-hash`, `nix`, …) configured for this store.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let root = self.dir.path();
        c.env("NIX_CONF_DIR", root.join("conf"))
            .env("NIX_REMOTE", root.join("root"))
            .env("HOME", root)
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env_remove("NIX_STORE_DIR")
            .env_remove("NIX_STATE_DIR");
        c
    }

    /// A Nix command for a local store at a non-default store directory `store_dir` (physically
    /// there, with its state in this temporary directory).
    pub fn cmd_with_store_dir(&self, program: &str, store_dir: &Path) -> Command {
        let mut c = Command::new(program);
        let root = self.dir.path();
        c.env("NIX_CONF_DIR", root.join("conf"))
            .env("NIX_REMOTE", "local")
            .env("NIX_STORE_DIR", store_dir)
            .env("NIX_STATE_DIR", root.join("state"))
            .env("NIX_LOG_DIR", root.join("log"))
            .env("HOME", root)
            .env("XDG_CACHE_HOME", root.join("cache"));
        c
    }
}

/// Whether two large outputs are equal, with a short message when not.
pub fn assert_bytes_eq(ours: &[u8], theirs: &[u8], what: &str) {
    if ours != theirs {
        let first = ours.iter().zip(theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
        panic!("{what}: outputs differ (ours {} bytes, Nix {} bytes, first difference at byte {first})", ours.len(), theirs.len());
    }
}

pub mod casnix_daemon;
pub mod daemon;
