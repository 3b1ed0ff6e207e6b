//! Garbage collection: roots, `--gc --print-roots/--print-live/--print-dead`, `--gc`,
//! `--delete`, `-q --roots`, `--optimise`.

mod common;

use compat_tests::Scenario;

#[test]
fn roots_and_collection() {
    Scenario::new("roots_and_collection").run(|s| {
        let keep = s.input("keep.txt", b"kept by a root\n");
        let dead = s.input("dead.txt", b"garbage\n");
        let tree = common::sample_tree(s, "tree");
        let keep = s.cmd(["nix-store", "--add", &keep]).expect_ok().run().line();
        let dead = s.cmd(["nix-store", "--add", &dead]).expect_ok().run().line();
        let tree = s.cmd(["nix-store", "--add", &tree]).expect_ok().run().line();
        let expr = common::derivation_expr(s);
        let root = s.work("keep-root");
        s.cmd(["nix-store", "--realise", &keep, "--add-root", &root]).expect_ok().run();
        let drv_root = s.work("drv-root");
        let drv = s.cmd(["nix-instantiate", "--add-root", &drv_root, &expr]).expect_ok().run().line();
        s.cmd(["nix-store", "--gc", "--print-roots"]).sorted().expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-live"]).expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--roots", &keep, &tree]).sorted().expect_ok().run();
        // A live path cannot be deleted; a dead one can.
        s.cmd(["nix-store", "--delete", &keep]).expect_fail().run();
        s.cmd(["nix-store", "--delete", &dead]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &dead]).expect_fail().run();
        s.cmd(["nix-store", "--delete", &dead]).run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "--gc"]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &keep, &drv]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &tree]).expect_fail().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        // Without its root the kept path goes too (and the stale root link is dropped).
        s.remove(&root);
        s.cmd(["nix-store", "--gc", "--print-roots"]).sorted().expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "--gc"]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &keep]).expect_fail().run();
        s.cmd(["nix-store", "--gc", "--print-live"]).expect_ok().run();
    });
}

#[test]
fn collection_limits() {
    Scenario::new("collection_limits").run(|s| {
        let a = s.input("a.txt", b"a\n");
        let a = s.cmd(["nix-store", "--add", &a]).expect_ok().run().line();
        // The daemon refuses to ignore liveness, even for trusted users.
        s.cmd(["nix-store", "--delete", "--ignore-liveness", &a]).expect_fail().run();
        s.cmd(["nix-store", "--check-validity", &a]).run();
        s.cmd(["nix-store", "--gc", "--max-freed", "0"]).expect_ok().run();
        s.cmd(["nix", "store", "gc", "--dry-run"]).expect_ok().run();
        s.cmd(["nix", "store", "gc"]).expect_ok().run();
        s.cmd(["nix", "store", "gc", "--print-roots"]).run();
        let missing = format!("{}/00000000000000000000000000000000-missing", s.store_dir());
        s.cmd(["nix-store", "--delete", &missing]).run();
        s.cmd(["nix", "store", "delete", &missing]).run();
    });
}

#[test]
fn optimise() {
    Scenario::new("optimise").run(|s| {
        let one = common::sample_tree(s, "one");
        let two = common::sample_tree(s, "two");
        let one = s.cmd(["nix-store", "--add", &one]).expect_ok().run().line();
        let two = s.cmd(["nix-store", "--add", &two]).expect_ok().run().line();
        s.cmd(["nix-store", "--optimise"]).expect_ok().run();
        s.cmd(["nix", "store", "optimise"]).expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
        s.cmd(["nix-store", "--dump", &one]).binary().expect_ok().run();
        s.cmd(["nix-store", "--dump", &two]).binary().expect_ok().run();
        s.cmd(["nix-store", "--delete", &one]).expect_ok().run();
        s.cmd(["nix-store", "--dump", &two]).binary().expect_ok().run();
    });
}

#[test]
fn runtime_roots() {
    Scenario::new("runtime_roots").run(|s| {
        let used = s.input("used.txt", b"open in a process\n");
        let unused = s.input("unused.txt", b"nobody uses this\n");
        let used = s.cmd(["nix-store", "--add", &used]).expect_ok().run().line();
        let unused = s.cmd(["nix-store", "--add", &unused]).expect_ok().run().line();
        let holder = s.hold_open(&used);
        // Untrusted users see `{censored}` instead of the process's file.
        s.cmd(["nix-store", "--gc", "--print-roots"]).sorted().expect_ok().run();
        s.cmd(["nix-store", "-q", "--roots", &used]).sorted().expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "--delete", &used]).expect_fail().run();
        s.cmd(["nix-store", "--gc"]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &used]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &unused]).expect_fail().run();
        drop(holder);
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "--gc"]).expect_ok().run();
        s.cmd(["nix-store", "--check-validity", &used]).expect_fail().run();
    });
}

#[test]
fn concurrent_clients() {
    Scenario::new("concurrent_clients").run(|s| {
        let tree = common::sample_tree(s, "tree");
        let mut commands: Vec<Vec<String>> = Vec::new();
        for i in 0..4 {
            let file = s.input(&format!("file-{i}.txt"), format!("file {i}\n").as_bytes());
            commands.push(vec!["nix-store".into(), "--add".into(), tree.clone()]);
            commands.push(vec!["nix-store".into(), "--add".into(), file]);
        }
        let outcomes = s.parallel(&commands);
        let paths: Vec<String> = outcomes.iter().map(|o| o.line()).collect();
        let mut args = vec!["nix-store".to_owned(), "--check-validity".to_owned()];
        args.extend(paths.iter().cloned());
        s.cmd(&args).expect_ok().run();
        s.cmd(["nix-store", "--verify", "--check-contents"]).expect_ok().run();
        // Queries and a collection at once: every path is dead, the collector takes them all.
        let queries: Vec<Vec<String>> =
            paths.iter().take(4).map(|p| vec!["nix-store".into(), "-q".into(), "--hash".into(), p.clone()]).collect();
        s.parallel(&queries);
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
        s.cmd(["nix-store", "--gc"]).ignore_stderr().expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
    });
}
