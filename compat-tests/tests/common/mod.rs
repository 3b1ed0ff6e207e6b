//! Inputs shared by the scenarios.
#![allow(dead_code)]

use compat_tests::{ClientKind, Session};

/// A signing key made once with `nix key generate-secret --key-name compat-fixed-1`, fixed so a
/// daemon's `nix.conf` can trust it before the scenario starts.
pub const FIXED_SECRET_KEY: &str =
    "compat-fixed-1:CfK9G564rYd3GsdNPE4SQcS/rdKcD/TyXzPLD5av5BHxernET7v59nO0S6gWRLp3gQzdAEiMtMNXIxLOQZAAQQ==";
/// Its public key (`nix key convert-secret-to-public`).
pub const FIXED_PUBLIC_KEY: &str = "compat-fixed-1:8Xq5xE+7+fZztEuoFkS6d4EM3QBIjLTDVyMSzkGQAEE=";

/// Writes a small tree (regular file, executable, symlink, nested directory, empty file) among
/// the inputs and returns its path.
pub fn sample_tree(s: &Session<'_>, name: &str) -> String {
    s.input(&format!("{name}/README"), b"a small tree\n");
    s.input_exec(&format!("{name}/bin/run"), b"#!/bin/sh\necho run\n");
    s.input(&format!("{name}/share/empty"), b"");
    s.input(&format!("{name}/share/deep/data.bin"), &(0u8..=255).cycle().take(70_000).collect::<Vec<u8>>());
    s.input_symlink(&format!("{name}/link"), "README");
    s.env().path("inputs").join(name).to_string_lossy().into_owned()
}

/// `nix store info` (Nix 2.26) or `nix store ping` (Nix 2.8, where `info` does not exist).
pub fn store_info_args(s: &Session<'_>) -> [&'static str; 3] {
    match s.client().kind {
        ClientKind::Nix28 => ["nix", "store", "ping"],
        ClientKind::Nix226 => ["nix", "store", "info"],
    }
}

/// Writes a Nix expression for a derivation (builder `/bin/sh`, never built) whose inputs are a
/// `builtins.toFile` text and a copied source file, and returns its path.
pub fn derivation_expr(s: &Session<'_>) -> String {
    s.input("drv/source.txt", b"source file of the derivation\n");
    s.input(
        "drv/default.nix",
        br#"let
  script = builtins.toFile "build.sh" "echo building > $out";
in derivation {
  name = "compat-drv";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ script ];
  src = ./source.txt;
  outputs = [ "out" "dev" ];
}
"#,
    )
}

/// Instantiates [`derivation_expr`] (as root, so untrusted sessions can query it too) and
/// returns the `.drv` path.
pub fn instantiate(s: &mut Session<'_>) -> String {
    let expr = derivation_expr(s);
    s.cmd(["nix-instantiate", &expr]).as_root().expect_ok().run().line()
}
