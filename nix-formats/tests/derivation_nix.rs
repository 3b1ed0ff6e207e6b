//! Differential test against the real Nix installed on this machine (2.8 here): instantiate a
//! varied set of derivations into an isolated store with `nix-instantiate`, then for every `.drv`
//! in that store (dependencies included): parse and print back byte for byte, recompute its store
//! path, recompute every output path (hashDerivationModulo), and fill in outputs from blank ones
//! as the evaluator does.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use nix_formats::derivation::{
    check_output_paths, fill_output_paths, Derivation, DerivationOutput, DirectoryReader, DrvHashCache,
};
use nix_formats::store_path::{StoreDir, StorePath};

/// SplitMix64, so every run generates the same strings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random string rich in the characters that ATerm and Nix escape.
fn random_string(rng: &mut Rng) -> String {
    const POOL: &[&str] = &[
        "a", "Z", "0", " ", "\"", "\\", "\n", "\r", "\t", "$", "{", "}", "${", "'", "é", "日本", "🦀", "\u{1}", "\u{7f}",
        "/", ":", "=", "\\n", "\\\"",
    ];
    (0..rng.below(12)).map(|_| POOL[rng.below(POOL.len())]).collect()
}

/// A Nix string literal for `s`.
fn nix_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn expressions(rng: &mut Rng) -> String {
    let mut random = String::new();
    for i in 0..12 {
        let _ = write!(random, "  random{i} = mk {{ name = \"random-{i}\"; args = [ ");
        for _ in 0..rng.below(4) {
            let _ = write!(random, "{} ", nix_string(&random_string(rng)));
        }
        random.push_str("];");
        for _ in 0..rng.below(6) {
            let key = format!("k{}{}", rng.below(100), random_string(rng));
            let _ = write!(random, " {} = {};", nix_string(&key), nix_string(&random_string(rng)));
        }
        if i % 3 == 1 {
            let _ = write!(random, " dep = random{};", i - 1);
        }
        random.push_str(" };\n");
    }
    format!(
        r#"
let
  mk = attrs: derivation ({{ system = "x86_64-linux"; builder = "/bin/sh"; }} // attrs);
  empty256 = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  src = builtins.toFile "src.txt" "hello\n";
  other = builtins.toFile "other.txt" "refers to ${{src}}";
  flat256 = mk {{ name = "flat-sha256"; outputHash = empty256; }};
  flat1 = mk {{ name = "flat-sha1"; outputHashAlgo = "sha1"; outputHash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"; }};
  flat512 = mk {{ name = "flat-sha512"; outputHashAlgo = "sha512"; outputHash = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"; }};
  flatMd5 = mk {{ name = "flat-md5"; outputHashAlgo = "md5"; outputHash = "d41d8cd98f00b204e9800998ecf8427e"; }};
  nar256 = mk {{ name = "nar-sha256"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"; }};
  nar1 = mk {{ name = "nar-sha1"; outputHashMode = "recursive"; outputHash = "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk="; }};
  nar512 = mk {{ name = "nar-sha512"; outputHashMode = "recursive"; outputHashAlgo = "sha512"; outputHash = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"; }};
  sameContent = mk {{ name = "flat-sha256"; builder = "/bin/other"; outputHash = empty256; }};
  multi = mk {{ name = "multi"; outputs = [ "out" "dev" "lib" "doc" ]; }};
  escapes = mk {{
    name = "escapes";
    args = [ "-c" "echo \"hi\" \\ \n\t\r $x é 🦀" "" ];
    quotes = "a \"quoted\" string";
    backslashes = "C:\\path\\n";
    newlines = "one\ntwo\r\nthree\n";
    tabs = "a\tb";
    unicode = "héllo — 日本語 🦀";
    control = builtins.fromJSON ''"\u0001\u0008\u000c\u001f\u007f"'';
    dollar = "\${{x}} $out";
    "attr with \"quotes\" and\nnewline" = "v";
    list = [ "a" "b c" 1 true false null ];
    number = 42;
    binary = builtins.readFile ./binary.bin;
  }};
  sources = mk {{ name = "sources"; inherit src other; path = ./binary.bin; args = [ src ]; }};
  dependent = mk {{
    name = "dependent";
    outputs = [ "out" "doc" ];
    a = flat256; b = flat1; c = flat512; d = flatMd5; e = nar256; f = nar1; g = nar512;
    dev = multi.dev; both = "${{multi.lib}} ${{multi.out}}";
    esc = escapes; srcs = sources;
  }};
  # Two fixed-output inputs with the same output: their modulo hashes merge.
  merged = mk {{ name = "merged"; a = flat256; b = sameContent; }};
  chain = mk {{ name = "chain"; dep = dependent; m = merged; }};
  structured = mk {{
    name = "structured";
    __structuredAttrs = true;
    outputs = [ "out" "bin" ];
    dep = multi.dev;
    nested = {{ a = [ 1 2 {{ b = "c\n\"d\""; }} ]; e = null; f = 2.5; }};
    unicode = "🦀";
  }};
  passAsFile = mk {{ name = "pass-as-file"; passAsFile = [ "big" ]; big = "lots\nof\ntext"; dep = nar1; }};
  ca = mk {{ name = "ca"; __contentAddressed = true; outputs = [ "out" "dev" ]; outputHashMode = "recursive"; outputHashAlgo = "sha256"; }};
  dependsOnCa = mk {{ name = "depends-on-ca"; dep = ca.dev; other = multi; }};
  dependsOnDeferred = mk {{ name = "depends-on-deferred"; dep = dependsOnCa; }};
  impure = mk {{ name = "impure"; __impure = true; }};
  dependsOnImpure = mk {{ name = "depends-on-impure"; dep = impure; }};
{random}in
{{
  inherit flat256 flat1 flat512 flatMd5 nar256 nar1 nar512 sameContent multi escapes sources dependent
    merged chain structured passAsFile ca dependsOnCa dependsOnDeferred impure dependsOnImpure
    {randoms};
}}
"#,
        randoms = (0..12).map(|i| format!("random{i}")).collect::<Vec<_>>().join(" "),
    )
}

#[test]
fn every_drv_nix_writes_round_trips_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = root.join("store");
    for dir in ["etc", "home", "state", "log"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(
        root.join("etc/nix.conf"),
        "experimental-features = nix-command ca-derivations impure-derivations\nsandbox = false\nsubstituters =\n",
    )
    .unwrap();
    fs::write(root.join("binary.bin"), b"bytes \xff\xfe\x80 not utf-8 \"q\" \\ \n").unwrap();
    let mut rng = Rng(0x5eed_d21f);
    fs::write(root.join("exprs.nix"), expressions(&mut rng)).unwrap();

    let output = Command::new("nix-instantiate")
        .arg(root.join("exprs.nix"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("NIX_STORE_DIR", &store)
        .env("NIX_STATE_DIR", root.join("state"))
        .env("NIX_LOG_DIR", root.join("log"))
        .env("NIX_CONF_DIR", root.join("etc"))
        .env("NIX_REMOTE", "local")
        .output()
        .expect("nix-instantiate must be installed (scripts/test-all.sh installs nix-bin)");
    assert!(output.status.success(), "nix-instantiate failed: {}", String::from_utf8_lossy(&output.stderr));

    let sd = StoreDir::new(store.to_str().unwrap());
    let mut reader = DirectoryReader::new(&store, sd.clone());
    let mut cache = DrvHashCache::new();
    let mut checked = 0;
    let mut deferred = 0;
    let mut entries: Vec<_> = fs::read_dir(&store).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for file in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "drv")) {
        let base = file.file_name().unwrap().to_str().unwrap();
        let drv_path = StorePath::from_base_name(base).unwrap();
        let name = Derivation::name_from_path(&drv_path).unwrap();
        let bytes = fs::read(file).unwrap();
        let drv = Derivation::parse_aterm(&bytes, name, &sd).unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(drv.to_aterm(&sd).unwrap(), bytes, "{base} does not print back identically");
        assert_eq!(drv.drv_path(&sd).unwrap(), drv_path, "{base}: wrong .drv path");
        check_output_paths(&drv, &drv_path, &sd, &mut cache, &mut reader).unwrap_or_else(|e| panic!("{base}: {e}"));

        let mut blank = drv.clone();
        for (output_name, output) in blank.outputs.iter_mut() {
            if matches!(output, DerivationOutput::InputAddressed(_)) {
                *output = DerivationOutput::Deferred;
            }
            blank.env.remove(output_name.as_bytes());
        }
        fill_output_paths(&mut blank, &sd, &mut cache, &mut reader).unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(blank, drv, "{base}: filling in outputs differs from Nix");

        if drv.outputs.values().any(|o| *o == DerivationOutput::Deferred) {
            deferred += 1;
        }
        checked += 1;
    }
    // 21 named derivations and 12 random ones.
    assert_eq!(checked, 33, "unexpected number of .drv files");
    assert_eq!(deferred, 3, "depends-on-ca, depends-on-deferred and depends-on-impure are deferred");
    let escapes = Path::new(&store)
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with("-escapes.drv"))
        .unwrap();
    assert!(fs::read(escapes).unwrap().windows(2).any(|w| w == b"\xff\xfe"), "raw bytes reach the .drv");
}
