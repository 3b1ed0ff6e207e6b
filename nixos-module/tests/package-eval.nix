# Evaluates package.nix with nixpkgs' real lib and a stand-in rustPlatform.buildRustPackage that
# returns its arguments, and checks them against the workspace: the source holds exactly the
# workspace's members (so a new crate cannot be left out), the version is the workspace's, and
# the packages built provide casnix-daemon, casnix and casnix-build-sandbox.
# Returns { failures = [ "message" … ]; checked = N; }. Run by nixos-module/tests/eval.sh on an
# isolated store (the source is copied into it).
{ lib }:

let
  repo = ../..;
  fake = name: "/nix/store/00000000000000000000000000000000-${name}";
  libseccomp = { lib = fake "libseccomp-2.5.5-lib"; out = fake "libseccomp-2.5.5"; };
  arguments = import (repo + "/package.nix") {
    inherit lib libseccomp;
    rustPlatform.buildRustPackage = args: args;
    pkg-config = fake "pkg-config";
    bzip2 = fake "bzip2";
  };

  workspace = lib.importTOML (repo + "/Cargo.toml");
  members = workspace.workspace.members;
  sourceEntries = builtins.attrNames (builtins.readDir arguments.src);

  # The packages `cargo build` is given, and the binaries each has: [[bin]] names, and
  # src/bin/NAME.rs (Cargo's automatic binaries).
  flagPackages = lib.pipe arguments.cargoBuildFlags [
    (lib.imap0 (index: flag: { inherit index flag; }))
    (lib.filter (entry: entry.index > 0 && builtins.elemAt arguments.cargoBuildFlags (entry.index - 1) == "--package"))
    (map (entry: entry.flag))
  ];
  binariesOf = package:
    let
      manifest = lib.importTOML (repo + "/${package}/Cargo.toml");
      binDir = repo + "/${package}/src/bin";
      autoBins = lib.optionals (builtins.pathExists binDir)
        (map (lib.removeSuffix ".rs") (lib.filter (lib.hasSuffix ".rs") (builtins.attrNames (builtins.readDir binDir))));
    in
    map (bin: bin.name) (manifest.bin or [ ]) ++ autoBins;
  binaries = lib.concatMap binariesOf flagPackages;

  check = name: got: expected:
    if got == expected then null
    else "package.nix: ${name}: expected ${builtins.toJSON expected}, got ${builtins.toJSON got}";
  checks = [
    (check "pname" arguments.pname "casnix")
    (check "version is the workspace's" arguments.version workspace.workspace.package.version)
    (check "source holds Cargo.toml, Cargo.lock and every workspace member" sourceEntries
      (lib.sort lib.lessThan ([ "Cargo.lock" "Cargo.toml" ] ++ members)))
    (check "Cargo.lock is the workspace's" (builtins.readFile arguments.cargoLock.lockFile) (builtins.readFile (repo + "/Cargo.lock")))
    (check "binaries built" (lib.sort lib.lessThan binaries) [ "casnix" "casnix-build-sandbox" "casnix-daemon" ])
    (check "libseccomp linked" arguments.buildInputs [ libseccomp (fake "bzip2") ])
    (check "libseccomp found by the crate's build script" arguments.env.LIBSECCOMP_LIB_PATH "${libseccomp.lib}/lib")
    (check "pkg-config for the libseccomp crate" arguments.nativeBuildInputs [ (fake "pkg-config") ])
  ];
in
{
  failures = lib.filter (failure: failure != null) checks;
  checked = builtins.length checks;
}
