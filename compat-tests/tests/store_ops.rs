//! Adding paths and querying them: `nix-store --add`, `--add-fixed`, `--check-validity`, `-q`,
//! `--dump`, `--export`/`--import`, `--verify`.

mod common;

use compat_tests::Scenario;

/// Every `-q` query of `nix-store` on one path.
const QUERIES: &[&str] =
    &["--references", "--referrers", "--requisites", "--referrers-closure", "--deriver", "--hash", "--size", "--outputs", "--roots"];

#[test]
fn add_and_query() {
    Scenario::new("add_and_query").run(|s| {
        let file = s.input("hello.txt", b"hello world\n");
        let script = s.input_exec("script.sh", b"#!/bin/sh\necho hi\n");
        let tree = common::sample_tree(s, "tree");
        let mut paths = Vec::new();
        for input in [&file, &script, &tree] {
            paths.push(s.cmd(["nix-store", "--add", input]).expect_ok().run().line());
        }
        // Adding again changes nothing; several at once print one path each.
        s.cmd(["nix-store", "--add", &file, &tree]).expect_ok().run();
        for algo in ["sha256", "sha1"] {
            paths.push(s.cmd(["nix-store", "--add-fixed", algo, &file]).expect_ok().run().line());
            paths.push(s.cmd(["nix-store", "--add-fixed", "--recursive", algo, &file]).expect_ok().run().line());
            paths.push(s.cmd(["nix-store", "--add-fixed", "--recursive", algo, &tree]).expect_ok().run().line());
        }
        s.cmd(["nix-store", "--add-fixed", "md5", &file]).expect_ok().run();
        // Flat hashing of a directory is refused.
        s.cmd(["nix-store", "--add-fixed", "sha256", &tree]).expect_fail().run();

        let mut validity = vec!["nix-store".to_owned(), "--check-validity".to_owned()];
        validity.extend(paths.iter().cloned());
        s.cmd(&validity).expect_ok().run();
        let missing = format!("{}/00000000000000000000000000000000-missing", s.store_dir());
        s.cmd(["nix-store", "--check-validity", &paths[0], &missing]).expect_fail().run();
        s.cmd(["nix-store", "--check-validity", "--print-invalid", &paths[0], &missing]).expect_ok().run();

        let tree_path = paths[2].clone();
        paths.sort();
        paths.dedup();
        // One command per query, on every path (the answers are printed in the paths' order).
        for query in QUERIES {
            let mut args = vec!["nix-store".to_owned(), "-q".to_owned(), (*query).to_owned()];
            args.extend(paths.iter().cloned());
            s.cmd(&args).expect_ok().run();
        }
        s.cmd(["nix-store", "-q", "--tree", &tree_path]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--graph", &tree_path]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--hash", &missing]).expect_fail().run();
        s.cmd(["nix-store", "-q", "--references", &missing]).expect_fail().run();
    });
}

#[test]
fn dump_and_read() {
    Scenario::new("dump_and_read").run(|s| {
        let file = s.input("hello.txt", b"hello world\n");
        let tree = common::sample_tree(s, "tree");
        let file = s.cmd(["nix-store", "--add", &file]).expect_ok().run().line();
        let tree = s.cmd(["nix-store", "--add", &tree]).expect_ok().run().line();
        for path in [&file, &tree] {
            s.cmd(["nix-store", "--dump", path]).binary().expect_ok().run();
        }
        s.cmd(["nix-store", "--dump", &format!("{tree}/share")]).binary().run();
        s.cmd(["nix", "store", "cat", &format!("{tree}/README")]).expect_ok().run();
        s.cmd(["nix", "store", "ls", "-R", "-l", "--json", &tree]).json().expect_ok().run();
        s.cmd(["nix", "store", "dump-path", &tree]).binary().expect_ok().run();
        let missing = format!("{}/00000000000000000000000000000000-missing", s.store_dir());
        s.cmd(["nix", "store", "dump-path", &missing]).binary().expect_fail().run();
    });
}

#[test]
fn export_import() {
    Scenario::new("export_import").run(|s| {
        let file = s.input("hello.txt", b"hello world\n");
        let tree = common::sample_tree(s, "tree");
        let file = s.cmd(["nix-store", "--add", &file]).as_root().expect_ok().run().line();
        let tree = s.cmd(["nix-store", "--add", &tree]).as_root().expect_ok().run().line();
        let archive = s.cmd(["nix-store", "--export", &file, &tree]).binary().expect_ok().run();
        let archive = archive.stdout_bytes().to_vec();
        s.cmd(["nix-store", "--delete", &file, &tree]).as_root().expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &file]).expect_fail().run();
        // Untrusted users cannot import unsigned paths.
        let trusted = s.trusted();
        s.cmd(["nix-store", "--import"]).stdin(archive.clone()).expect(trusted).run();
        s.cmd(["nix-store", "--check-validity", &file, &tree]).run();
        s.cmd(["nix-store", "--import"]).stdin(archive.clone()).as_root().expect_ok().run();
        s.cmd(["nix-store", "-q", "--hash", &file, &tree]).expect_ok().run();
        s.cmd(["nix", "path-info", "--json", &file, &tree]).json().expect_ok().run();
        // Importing again is a no-op; a truncated archive is an error.
        s.cmd(["nix-store", "--import"]).stdin(archive.clone()).as_root().expect_ok().run();
        s.cmd(["nix-store", "--import"]).stdin(archive[..archive.len() / 2].to_vec()).expect_fail().run();
        s.cmd(["nix-store", "--import"]).stdin(b"not an export".to_vec()).expect_fail().run();
    });
}

#[test]
fn export_import_closure() {
    Scenario::new("export_import_closure").run(|s| {
        let drv = common::instantiate(s);
        let closure = s.cmd(["nix-store", "-q", "--requisites", &drv]).expect_ok().run().lines();
        let mut export = vec!["nix-store".to_owned(), "--export".to_owned()];
        export.extend(closure.iter().cloned());
        let archive = s.cmd(&export).binary().expect_ok().run().stdout_bytes().to_vec();
        let mut delete = vec!["nix-store".to_owned(), "--delete".to_owned()];
        delete.extend(closure.iter().cloned());
        s.cmd(&delete).as_root().expect_ok().run();
        let trusted = s.trusted();
        s.cmd(["nix-store", "--import"]).stdin(archive.clone()).expect(trusted).run();
        s.cmd(["nix-store", "--import"]).stdin(archive).as_root().expect_ok().run();
        s.cmd(["nix-store", "-q", "--references", &drv]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--referrers", &closure[0]]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--deriver", &drv]).expect_ok().run();
        s.cmd(["nix", "path-info", "--json", &closure[0], &closure[1], &drv]).json().expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
    });
}

#[test]
fn verify() {
    Scenario::new("verify").run(|s| {
        let file = s.input("hello.txt", b"hello world\n");
        let tree = common::sample_tree(s, "tree");
        let file = s.cmd(["nix-store", "--add", &file]).as_root().expect_ok().run().line();
        let tree = s.cmd(["nix-store", "--add", &tree]).as_root().expect_ok().run().line();
        s.cmd(["nix-store", "--verify"]).expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
        s.cmd(["nix-store", "--verify-path", &file, &tree]).expect_ok().run();
        s.cmd(["nix", "store", "verify", "--no-trust", "-r", &file, &tree]).sorted_stderr().expect_ok().run();
        s.corrupt(&format!("{tree}/README"), b"changed behind the store's back\n");
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_fail().run();
        s.cmd(["nix-store", "--verify-path", &tree]).expect_fail().run();
        s.cmd(["nix", "store", "verify", "--no-trust", &tree]).sorted_stderr().expect_fail().run();
        // Repairing needs trust (and a way to get the path back: none here).
        s.cmd(["nix-store", "--verify", "--check-contents", "--repair"]).expect_fail().run();
        s.cmd(["nix-store", "--repair-path", &tree]).expect_fail().run();
    });
}

#[test]
fn names_and_sizes() {
    Scenario::new("names_and_sizes").run(|s| {
        // Several MiB: the framed (Nix 2.26) and inline (2.8) upload paths both carry many chunks.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let large: Vec<u8> = (0..6 * 1024 * 1024 + 17)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let large = s.input("large.bin", &large);
        let large = s.cmd(["nix-store", "--add", &large]).expect_ok().run().line();
        s.cmd(["nix-store", "-q", "--hash", "--size", &large]).run();
        s.cmd(["nix-store", "-q", "--size", &large]).expect_ok().run();
        s.cmd(["nix-store", "--dump", &large]).binary().expect_ok().run();
        s.cmd(["nix-store", "--add-fixed", "--recursive", "sha512", s.env().path("inputs/large.bin").to_str().unwrap_or_default()])
            .expect_ok()
            .run();
        let empty = s.input("empty", b"");
        s.cmd(["nix-store", "--add", &empty]).expect_ok().run();
        // Names Nix allows, and one it refuses.
        for name in ["a+b=c", "x_y-1.2.3", "?question", "dots.in.name"] {
            let file = s.input(name, name.as_bytes());
            s.cmd(["nix-store", "--add", &file]).run();
        }
        let bad = s.input(".hidden", b"hidden\n");
        s.cmd(["nix-store", "--add", &bad]).run();
        let spaced = s.input("with space", b"space\n");
        s.cmd(["nix-store", "--add", &spaced]).run();
        s.cmd(["nix-store", "--dump-db"]).expect_ok().run();
    });
}

#[test]
fn nix_store_subcommands() {
    Scenario::new("nix_store_subcommands").run(|s| {
        let file = s.input("hello.txt", b"hello world\n");
        let tree = common::sample_tree(s, "tree");
        s.cmd(["nix", "store", "add-file", &file]).expect_ok().run();
        s.cmd(["nix", "store", "add-path", &tree]).expect_ok().run();
        s.cmd(["nix", "store", "add-path", "--name", "renamed", &tree]).expect_ok().run();
        let imported = s.cmd(["nix-store", "--add", &file]).as_root().expect_ok().run().line();
        let archive = s.cmd(["nix-store", "--export", &imported]).as_root().binary().expect_ok().run();
        s.cmd(["nix-store", "--delete", &imported]).as_root().expect_ok().run();
        s.cmd(["nix-store", "--import"]).stdin(archive.stdout_bytes().to_vec()).as_root().expect_ok().run();
        // Rewriting an input-addressed path as content-addressed adds a new path.
        s.cmd(["nix", "store", "make-content-addressed", "--json", &imported]).json().run();
        s.cmd(["nix", "path-info", "--json", "--all"]).json().expect_ok().run();
    });
}
