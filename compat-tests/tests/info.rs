//! What the daemon says about itself: `nix store ping` (Nix 2.8) and `nix store info` (Nix 2.26).

mod common;

use compat_tests::{ClientKind, Scenario};

#[test]
fn store_info() {
    Scenario::new("store_info").run(|s| {
        let info = common::store_info_args(s);
        s.cmd(info).expect_ok().run();
        if s.client().kind == ClientKind::Nix226 {
            s.cmd(["nix", "store", "info", "--json"]).json().expect_ok().run();
            s.cmd(["nix", "store", "ping", "--json"]).json().expect_ok().run();
        }
        s.cmd(["nix-store", "--version"]).expect_ok().run();
        s.cmd(["nix", "path-info", "--json", "--all"]).json().expect_ok().run();
    });
}
