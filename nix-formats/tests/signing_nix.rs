//! Differential tests against the real Nix on this machine (2.8), in an isolated store under a
//! temporary directory: keys, signatures made by `nix store sign`, and narinfo files written by
//! `nix copy --to file://…`, and Nix accepting narinfos we signed.
//!
//! They need `nix` on `PATH` (the README's test command installs it) and fail without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix_formats::narinfo::NarInfo;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::{PublicKey, SecretKey, Signature, TrustedKeys};
use nix_formats::store_path::StoreDir;
use serde_json::Value;

/// An isolated Nix store with a small closure built, signed and copied to two binary caches.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store_dir: StoreDir,
    /// Key made by `nix key generate-secret`, and its public key from Nix.
    nix_key: SecretKey,
    nix_public: String,
    /// Key made by us, used by `nix store sign` too.
    our_key: SecretKey,
    /// The top path of the closure (full path).
    top: String,
    /// `nix path-info --json --sigs -r top`, by path.
    infos: BTreeMap<String, Value>,
}

fn nix_available() -> bool {
    let ok = Command::new("nix").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "these tests need the real Nix on PATH: run ./scripts/test-all.sh, which installs nix-bin");
    ok
}

impl Fixture {
    fn get() -> Option<&'static Fixture> {
        static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
        FIXTURE.get_or_init(|| nix_available().then(Fixture::build)).as_ref()
    }

    /// A command running Nix against the isolated store, with the given extra configuration.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let r = &self.root;
        c.env("NIX_STORE_DIR", r.join("store"))
            .env("NIX_STATE_DIR", r.join("state"))
            .env("NIX_LOG_DIR", r.join("log"))
            .env("NIX_CONF_DIR", r.join("conf"))
            .env("NIX_REMOTE", "local")
            .env("HOME", r.join("home"))
            .env("XDG_CACHE_HOME", r.join("home/.cache"))
            .env_remove("NIX_CONFIG")
            .env_remove("NIX_PATH");
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        run_command(self.cmd(program).args(args))
    }

    /// Like [`Self::run`] but returns whether it succeeded, and stderr.
    fn try_run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = self.cmd(program).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn build() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for d in ["store", "state", "log", "conf", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(
            root.join("conf/nix.conf"),
            "experimental-features = nix-command\nsandbox = false\nsubstituters =\n",
        )
        .unwrap();
        let store_dir = StoreDir::new(root.join("store").to_str().unwrap());
        let mut f = Fixture {
            _tmp: tmp,
            root: root.clone(),
            store_dir,
            nix_key: SecretKey::generate("placeholder").unwrap(),
            nix_public: String::new(),
            our_key: SecretKey::generate("casnix-test-1").unwrap(),
            top: String::new(),
            infos: BTreeMap::new(),
        };

        // Keys: one from Nix, one from us.
        let nix_secret = f.run("nix", &["key", "generate-secret", "--key-name", "nix-made.example.org-1"]);
        f.nix_key = SecretKey::parse(&nix_secret).unwrap();
        let nix_key_file = root.join("nix.sec");
        std::fs::write(&nix_key_file, &nix_secret).unwrap();
        f.nix_public = run_command(
            f.cmd("nix").args(["key", "convert-secret-to-public"]).stdin(std::fs::File::open(&nix_key_file).unwrap()),
        );
        let our_key_file = root.join("ours.sec");
        std::fs::write(&our_key_file, f.our_key.to_text()).unwrap();

        // A closure: a text file (content-addressed), a derivation output referring to it, and
        // one referring to that and to itself.
        let nix_file = root.join("closure.nix");
        std::fs::write(&nix_file, CLOSURE_NIX).unwrap();
        f.top = f.run("nix-build", &[nix_file.to_str().unwrap(), "-A", "top", "--no-out-link"]).trim().to_owned();

        // Sign everything with both keys, then copy to two caches.
        for key_file in [&nix_key_file, &our_key_file] {
            f.run("nix", &["store", "sign", "--key-file", key_file.to_str().unwrap(), "-r", &f.top]);
        }
        let caches = [
            ("cache-none", "compression=none".to_owned()),
            ("cache-xz", format!("compression=xz&secret-key={}", nix_key_file.display())),
        ];
        for (dir, query) in caches {
            f.run("nix", &["copy", "--to", &format!("file://{}?{query}", root.join(dir).display()), &f.top]);
        }

        let listing: Value =
            serde_json::from_str(&f.run("nix", &["path-info", "--json", "--sigs", "-r", &f.top])).unwrap();
        for item in listing.as_array().unwrap() {
            f.infos.insert(item["path"].as_str().unwrap().to_owned(), item.clone());
        }
        assert_eq!(f.infos.len(), 3);
        f
    }

    /// The path info Nix reports for `path` (Nix 2.8's JSON, read by our 2.26 reader).
    fn info(&self, path: &str) -> ValidPathInfo {
        let p = self.store_dir.parse(path).unwrap();
        ValidPathInfo::from_json(&self.store_dir, p, &self.infos[path]).unwrap()
    }

    /// The narinfo files of a cache, by file name, with their bytes.
    fn narinfos(&self, cache: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.root.join(cache)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.ends_with(".narinfo") {
                out.push((name, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        out.sort();
        assert_eq!(out.len(), 3, "{cache}");
        out
    }
}

const CLOSURE_NIX: &str = r#"
let t = builtins.toFile "t" "hello";
in rec {
  dep = derivation { name = "dep"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${t} > $out" ]; };
  top = derivation { name = "top"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${dep} $out > $out" ]; };
}
"#;

fn run_command(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn trusted(keys: &[PublicKey]) -> TrustedKeys {
    keys.iter().cloned().collect()
}

#[test]
fn nix_keys_parse_and_give_the_same_public_key() {
    let Some(f) = Fixture::get() else { return };
    assert_eq!(f.nix_key.name(), "nix-made.example.org-1");
    assert_eq!(f.nix_key.public().to_string(), f.nix_public);
    assert_eq!(PublicKey::parse(&f.nix_public).unwrap(), f.nix_key.public());
    // More keys, with other names, straight from Nix.
    for name in ["a", "cache.example.org-2", "x_y+z"] {
        let secret = f.run("nix", &["key", "generate-secret", "--key-name", name]);
        let key = SecretKey::parse(&secret).unwrap();
        assert_eq!(key.to_text(), secret);
        let file = f.root.join(format!("{name}.sec"));
        std::fs::write(&file, &secret).unwrap();
        let public = run_command(
            f.cmd("nix").args(["key", "convert-secret-to-public"]).stdin(std::fs::File::open(&file).unwrap()),
        );
        assert_eq!(key.public().to_string(), public);
    }
    // Nix reads our keys the same way.
    let file = f.root.join("ours-again.sec");
    std::fs::write(&file, f.our_key.to_text()).unwrap();
    let public =
        run_command(f.cmd("nix").args(["key", "convert-secret-to-public"]).stdin(std::fs::File::open(&file).unwrap()));
    assert_eq!(f.our_key.public().to_string(), public);
}

#[test]
fn our_signatures_equal_nix_store_sign() {
    let Some(f) = Fixture::get() else { return };
    let keys = trusted(&[f.nix_key.public(), f.our_key.public()]);
    for path in f.infos.keys() {
        let info = f.info(path);
        assert_eq!(info.sigs.len(), 2, "{path}: {:?}", info.sigs);
        for key in [&f.nix_key, &f.our_key] {
            let mut unsigned = info.clone();
            unsigned.sigs.clear();
            let sig = unsigned.sign(&f.store_dir, key).unwrap();
            assert!(info.sigs.contains(&sig.to_string()), "{path}: {sig} not among {:?}", info.sigs);
        }
        // Our verification accepts Nix's signatures…
        assert_eq!(info.count_valid_signatures(&f.store_dir, &keys), Ok(2), "{path}");
        assert_eq!(info.count_valid_signatures(&f.store_dir, &trusted(&[f.nix_key.public()])), Ok(1));
        // …and rejects tampered ones.
        let fingerprint = info.fingerprint(&f.store_dir).unwrap();
        for sig_text in &info.sigs {
            let sig = Signature::parse(sig_text).unwrap();
            let mut bytes = *sig.bytes();
            bytes[10] ^= 0x40;
            let key = keys.get(sig.key_name()).unwrap();
            assert!(key.verify(fingerprint.as_bytes(), &sig));
            assert!(!key.verify_bytes(fingerprint.as_bytes(), &bytes));
            assert!(!key.verify(format!("{fingerprint}x").as_bytes(), &sig));
        }
        let mut tampered = info.clone();
        tampered.nar_size += 1;
        assert_eq!(tampered.count_valid_signatures(&f.store_dir, &keys), Ok(0));
    }
    // The derivation outputs are input-addressed and need their signatures; the text file is
    // content-addressed and needs none.
    let top = f.info(&f.top);
    assert!(!top.is_content_addressed(&f.store_dir));
    assert!(top.references.contains(&top.path), "top refers to itself");
    assert_eq!(top.check_signatures(&f.store_dir, &keys), Ok(2));
    let text = f.infos.keys().find(|p| p.ends_with("-t")).unwrap();
    assert!(f.info(text).is_content_addressed(&f.store_dir));
}

#[test]
fn nix_copy_narinfos_round_trip_and_verify() {
    let Some(f) = Fixture::get() else { return };
    let keys = trusted(&[f.nix_key.public(), f.our_key.public()]);
    for cache in ["cache-none", "cache-xz"] {
        for (name, text) in f.narinfos(cache) {
            let n = NarInfo::parse(&f.store_dir, &text).unwrap();
            assert_eq!(n.to_text(&f.store_dir).unwrap(), text, "{cache}/{name}");
            assert_eq!(n.file_name(), name);
            assert_eq!(n.compression, if cache == "cache-xz" { "xz" } else { "none" });
            assert!(Path::new(&f.root.join(cache).join(&n.url)).is_file(), "{}", n.url);
            // The narinfo carries the same facts as the store.
            let info = f.info(&f.store_dir.print(&n.info.path));
            assert_eq!(n.info.nar_hash, info.nar_hash);
            assert_eq!(n.info.nar_size, info.nar_size);
            assert_eq!(n.info.references, info.references);
            assert_eq!(n.info.deriver, info.deriver);
            assert_eq!(n.info.ca, info.ca);
            assert_eq!(n.info.sigs, info.sigs);
            assert_eq!(n.count_valid_signatures(&f.store_dir, &keys), Ok(2), "{cache}/{name}");
        }
    }
}

/// Strips the signatures of a cache's narinfos, signs them with our key only (optionally
/// spoiling the one of `top`), and asks Nix to copy the closure out of it into a fresh store that
/// trusts only our key.
fn nix_copies_from_cache_we_signed(f: &Fixture, spoil_top: bool, dest: &str) -> (bool, String) {
    let cache = f.root.join(format!("{dest}-cache"));
    let status = Command::new("cp").arg("-r").arg(f.root.join("cache-none")).arg(&cache).status().unwrap();
    assert!(status.success());
    for (name, text) in f.narinfos("cache-none") {
        let mut n = NarInfo::parse(&f.store_dir, &text).unwrap();
        n.info.sigs.clear();
        n.sign(&f.store_dir, &f.our_key).unwrap();
        if spoil_top && f.store_dir.print(&n.info.path) == f.top {
            n.info.sigs.clear();
            n.info.nar_size += 1;
            n.sign(&f.store_dir, &f.our_key).unwrap();
            n.info.nar_size -= 1;
        }
        std::fs::write(cache.join(name), n.to_text(&f.store_dir).unwrap()).unwrap();
    }
    let from = format!("file://{}", cache.display());
    let to = f.root.join(dest);
    let public = f.our_key.public().to_string();
    f.try_run(
        "nix",
        &[
            "copy",
            "--from",
            &from,
            "--to",
            to.to_str().unwrap(),
            "--option",
            "trusted-public-keys",
            &public,
            "--option",
            "require-sigs",
            "true",
            &f.top,
        ],
    )
}

#[test]
fn nix_accepts_narinfos_we_signed() {
    let Some(f) = Fixture::get() else { return };
    let (ok, stderr) = nix_copies_from_cache_we_signed(f, false, "dest-good");
    assert!(ok, "nix copy failed: {stderr}");
    let (ok, stderr) = nix_copies_from_cache_we_signed(f, true, "dest-bad");
    assert!(!ok, "nix copy accepted a bad signature");
    assert!(stderr.contains("lacks a valid signature"), "{stderr}");
}
