use compat_tests::Scenario;

#[test]
fn smoke() {
    Scenario::new("smoke").run(|s| {
        let f = s.input("hello.txt", b"hello\n");
        let p = s.cmd(["nix-store", "--add", &f]).expect_ok().run().line();
        s.cmd(["nix-store", "-q", "--references", &p]).run();
        s.cmd(["nix", "path-info", "--json", &p]).json().run();
    });
}

#[test]
fn info() {
    Scenario::new("info").run(|s| {
        let sub = if s.client().kind == compat_tests::ClientKind::Nix28 { "ping" } else { "info" };
        s.cmd(["nix", "store", sub]).run();
        s.cmd(["nix-store", "--gc", "--print-roots"]).run();
    });
}
