//! Derivations through the daemon (never built): `nix-instantiate`, queries on `.drv` files and
//! their inputs, `nix derivation show`, `--dry-run` realisation (the daemon's missing-paths query).

mod common;

use compat_tests::{ClientKind, Scenario};

#[test]
fn instantiate_and_query() {
    Scenario::new("instantiate_and_query").run(|s| {
        let expr = common::derivation_expr(s);
        let drv = s.cmd(["nix-instantiate", &expr]).expect_ok().run().line();
        s.cmd(["nix-instantiate", &expr]).expect_ok().run();
        let inputs = s.cmd(["nix-store", "-q", "--references", &drv]).expect_ok().run().lines();
        s.cmd(["nix-store", "-q", "--requisites", &drv]).expect_ok().run();
        let outputs = s.cmd(["nix-store", "-q", "--outputs", &drv]).expect_ok().run().lines();
        for query in ["--deriver", "--hash", "--size", "--tree", "--graph", "--roots"] {
            s.cmd(["nix-store", "-q", query, &drv]).expect_ok().run();
        }
        for input in &inputs {
            s.cmd(["nix-store", "-q", "--referrers", input]).expect_ok().run();
            s.cmd(["nix-store", "-q", "--referrers-closure", input]).expect_ok().run();
            s.cmd(["nix-store", "-q", "--deriver", input]).expect_ok().run();
        }
        // The outputs are known but not valid (nothing was built).
        for output in &outputs {
            s.cmd(["nix-store", "--check-validity", output]).expect_fail().run();
            s.cmd(["nix-store", "-q", "--deriver", output]).expect_fail().run();
        }
        s.cmd(["nix-store", "--realise", "--dry-run", &drv]).expect_ok().run();
        s.cmd(["nix-store", "-q", "--binding", "builder", &drv]).expect_ok().run();
        let show = match s.client().kind {
            ClientKind::Nix28 => vec!["nix", "show-derivation", drv.as_str()],
            ClientKind::Nix226 => vec!["nix", "derivation", "show", drv.as_str()],
        };
        s.cmd(show).json().expect_ok().run();
        // (A `.drv` argument means its outputs to Nix 2.8's `nix path-info`: ask about the inputs.)
        let mut path_info = vec!["nix", "path-info", "--json", "-r", "-S"];
        path_info.extend(inputs.iter().map(String::as_str));
        s.cmd(path_info).json().expect_ok().run();
        // A derivation's own inputs cannot be deleted while it is alive; the derivation can.
        s.cmd(["nix-store", "--delete", &inputs[0]]).expect_fail().run();
        s.cmd(["nix-store", "--delete", &drv]).expect_ok().run();
        s.cmd(["nix-store", "--delete", &inputs[0]]).expect_ok().run();
        s.cmd(["nix-instantiate", &expr]).expect_ok().run();
    });
}

#[test]
fn evaluation_errors() {
    Scenario::new("evaluation_errors").run(|s| {
        let bad = s.input("bad.nix", b"derivation { name = \"x\"; system = \"x\"; }\n");
        s.cmd(["nix-instantiate", &bad]).expect_fail().run();
        let text = s.input("text.nix", b"builtins.toFile \"t\" \"contents\"\n");
        s.cmd(["nix-instantiate", "--eval", "--strict", &text]).expect_ok().run();
        s.cmd(["nix-instantiate", "--eval", "--read-write-mode", &text]).expect_ok().run();
    });
}
