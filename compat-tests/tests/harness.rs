//! The harness itself: a real difference between two daemons is reported, with a readable diff.

use compat_tests::daemon::{host_nix_daemon, Launch};
use compat_tests::{ClientKind, Scenario, User};

/// Nix 2.26's daemon tells a 2.26 client whether it is trusted (protocol 1.35 and later); Nix
/// 2.8's does not. Comparing the two must show exactly that line.
#[test]
fn reports_a_real_difference() {
    let scenario = Scenario::new("harness_self_test")
        .clients(&[ClientKind::Nix226])
        .users(&[User::Untrusted])
        .reference(Launch::Host(host_nix_daemon()))
        .under_test(Launch::Trixie);
    let reports = scenario.differences(|s| {
        s.cmd(["nix", "store", "info"]).expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-dead"]).expect_ok().run();
    });
    let report = reports.join("\n");
    assert_eq!(reports.len(), 1, "{report}");
    assert!(report.contains("1 of 2 steps differ"), "{report}");
    assert!(report.contains("step 1: [nix-2.26 as untrusted] nix store info"), "{report}");
    assert!(report.contains(" + Trusted: 0"), "{report}");
}

/// The same daemon (Nix 2.26's) on both sides agrees with itself, as root and untrusted, for
/// both clients.
#[test]
fn same_daemon_agrees() {
    let scenario = Scenario::new("harness_same").reference(Launch::Trixie).under_test(Launch::Trixie);
    let reports = scenario.differences(|s| {
        let file = s.input("a.txt", b"a\n");
        let path = s.cmd(["nix-store", "--add", &file]).expect_ok().run().line();
        s.cmd(["nix", "path-info", "--json", &path]).json().expect_ok().run();
        s.cmd(["nix-store", "--gc", "--print-roots"]).sorted().expect_ok().run();
    });
    assert!(reports.is_empty(), "{}", reports.join("\n"));
}
