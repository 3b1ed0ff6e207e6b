//! Path info, signatures and binary caches: `nix path-info --json -r -S --sigs`, `nix store
//! sign`, `nix store verify`, `nix copy --to file://…` from the daemon and `nix copy --from
//! file://…` into it.

mod common;

use compat_tests::{Scenario, Session};

/// Adds a file and a tree (as root, so every user finds them) and returns their paths. They
/// go through `--export`, `--delete` and `--import`, which leaves them without a content
/// address: like built paths, they are trusted only with a signature.
fn add_two(s: &mut Session<'_>) -> (String, String) {
    let file = s.input("hello.txt", b"hello world\n");
    let tree = common::sample_tree(s, "tree");
    let file = s.cmd(["nix-store", "--add", &file]).as_root().expect_ok().run().line();
    let tree = s.cmd(["nix-store", "--add", &tree]).as_root().expect_ok().run().line();
    let archive = s.cmd(["nix-store", "--export", &file, &tree]).as_root().binary().expect_ok().run();
    s.cmd(["nix-store", "--delete", &file, &tree]).as_root().expect_ok().run();
    s.cmd(["nix-store", "--import"]).stdin(archive.stdout_bytes().to_vec()).as_root().expect_ok().run();
    (file, tree)
}

#[test]
fn path_info() {
    Scenario::new("path_info").run(|s| {
        let (file, tree) = add_two(s);
        let drv = common::instantiate(s);
        let inputs = s.cmd(["nix-store", "-q", "--references", &drv]).expect_ok().run().lines();
        let mut args = vec!["nix", "path-info", "--json", "-r", "-S", "--sigs", &file, &tree];
        args.extend(inputs.iter().map(String::as_str));
        s.cmd(&args).json().expect_ok().run();
        s.cmd(["nix", "path-info", "-r", "-S", "-s", "--sigs", &file, &tree]).expect_ok().run();
        s.cmd(["nix", "path-info", "--json", "--all"]).json().expect_ok().run();
        s.cmd(["nix", "path-info", "--closure-size", "--human-readable", &tree]).run();
        let missing = format!("{}/00000000000000000000000000000000-missing", s.store_dir());
        s.cmd(["nix", "path-info", "--json", &missing]).json().run();
    });
}

#[test]
fn sign_and_verify() {
    Scenario::new("sign_and_verify").run(|s| {
        let (key, public) = s.key_pair();
        let (file, tree) = add_two(s);
        // Nix 2.8's daemon lets only trusted users add signatures; Nix 2.26's lets anyone.
        s.cmd(["nix", "store", "sign", "--key-file", &key, &tree]).sorted_stderr().run();
        s.cmd(["nix", "path-info", "--json", "--sigs", &tree]).json().expect_ok().run();
        s.cmd(["nix", "store", "verify", &tree]).sorted_stderr().run();
        s.cmd(["nix", "store", "verify", "--sigs-needed", "1", "--trusted-public-keys", &public, &tree]).sorted_stderr().run();
        s.cmd(["nix", "store", "verify", "--trusted-public-keys", &public, &file]).sorted_stderr().expect_fail().run();
        s.cmd(["nix", "store", "verify", "--no-trust", &file, &tree]).sorted_stderr().expect_ok().run();
        s.cmd(["nix", "store", "sign", "-r", "--key-file", &key, &file]).sorted_stderr().as_root().expect_ok().run();
        s.cmd(["nix", "store", "verify", "--sigs-needed", "1", "--trusted-public-keys", &public, &file]).sorted_stderr().expect_ok().run();
        s.cmd(["nix", "store", "verify", "--all", "--sigs-needed", "1", "--trusted-public-keys", &public]).sorted_stderr().run();
        s.cmd(["nix", "store", "verify", "--sigs-needed", "2", "--trusted-public-keys", &public, &file]).sorted_stderr().expect_fail().run();
        s.cmd(["nix", "path-info", "--sigs", &file, &tree]).expect_ok().run();
        // Signing twice with one key keeps one signature.
        s.cmd(["nix", "store", "sign", "--key-file", &key, &file]).sorted_stderr().as_root().expect_ok().run();
        s.cmd(["nix", "path-info", "--json", "--sigs", &file]).json().expect_ok().run();
    });
}

#[test]
fn copy_to_binary_cache() {
    Scenario::new("copy_to_binary_cache").run(|s| {
        let (key, _) = s.key_pair();
        let (file, tree) = add_two(s);
        let cache = s.work("cache");
        let url = format!("file://{cache}");
        s.cmd(["nix", "copy", "--from", "daemon", "--to", &url, &file, &tree]).sorted_stderr().expect_ok().run();
        s.snapshot("binary cache", &cache);
        s.cmd(["nix", "path-info", "--json", "--store", &url, &file, &tree]).json().expect_ok().run();
        let signed = s.work("signed");
        let signed_url = format!("file://{signed}?compression=none&secret-key={key}");
        s.cmd(["nix", "copy", "--to", &signed_url, &tree]).sorted_stderr().expect_ok().run();
        s.snapshot("signed binary cache", &signed);
        // A path the daemon does not have cannot be copied.
        let missing = format!("{}/00000000000000000000000000000000-missing", s.store_dir());
        s.cmd(["nix", "copy", "--to", &url, &missing]).sorted_stderr().expect_fail().run();
    });
}

#[test]
fn copy_from_binary_cache() {
    Scenario::new("copy_from_binary_cache").conf(&format!("trusted-public-keys = {}", common::FIXED_PUBLIC_KEY)).run(|s| {
        let secret = s.input("fixed.secret", common::FIXED_SECRET_KEY.as_bytes());
        let (file, tree) = add_two(s);
        let cache = s.work("cache");
        let url = format!("file://{cache}");
        let signed = s.work("signed");
        let signed_url = format!("file://{signed}?secret-key={secret}");
        s.cmd(["nix", "copy", "--to", &url, &file, &tree]).sorted_stderr().as_root().expect_ok().run();
        s.cmd(["nix", "copy", "--to", &signed_url, &file, &tree]).sorted_stderr().as_root().expect_ok().run();
        s.cmd(["nix-store", "--delete", &file, &tree]).as_root().expect_ok().run();
        // Unsigned paths: refused unless a trusted user turns the check off.
        s.cmd(["nix", "copy", "--from", &url, &file, &tree]).sorted_stderr().expect_fail().run();
        s.cmd(["nix-store", "--check-validity", &file]).expect_fail().run();
        let trusted = s.trusted();
        s.cmd(["nix", "copy", "--no-check-sigs", "--from", &url, &file]).sorted_stderr().expect(trusted).run();
        s.cmd(["nix", "path-info", "--json", &file]).json().run();
        // Signed by a key the daemon trusts: anyone may copy them in.
        s.cmd(["nix", "copy", "--from", &signed_url, &tree]).sorted_stderr().expect_ok().run();
        s.cmd(["nix", "path-info", "--json", "--sigs", &tree]).json().expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
        s.cmd(["nix", "copy", "--from", &signed_url, &file, &tree]).sorted_stderr().expect_ok().run();
        s.cmd(["nix-store", "--dump", &tree]).binary().expect_ok().run();
    });
}
