# casnix's binaries: casnix-daemon (the native sandbox's helper is built into it and also
# installed on its own as casnix-build-sandbox) and the casnix tool.
{
  lib,
  rustPlatform,
  pkg-config,
  libseccomp,
  bzip2,
}:

rustPlatform.buildRustPackage {
  pname = "casnix";
  version = (lib.importTOML ./Cargo.toml).workspace.package.version;

  # The workspace (every member, as Cargo needs them all to read it), nothing else.
  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./Cargo.toml
      ./Cargo.lock
      ./nix-formats
      ./worker-protocol
      ./castore
      ./store
      ./sandbox
      ./eval
      ./daemon
      ./cli
      ./compat-tests
    ];
  };
  cargoLock.lockFile = ./Cargo.lock;

  cargoBuildFlags = [
    "--package" "daemon"
    "--package" "cli"
    "--package" "sandbox"
  ];

  # The `sandbox` crate links libseccomp (found through pkg-config and LIBSECCOMP_LIB_PATH);
  # the daemon's build logs are bzip2-compressed.
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ libseccomp bzip2 ];
  env.LIBSECCOMP_LIB_PATH = "${lib.getLib libseccomp}/lib";

  # The tests compare with real Nix 2.8 and 2.26 clients and daemons, run as root and create
  # users: scripts/test-all.sh runs them on a Debian machine; nixos-module/test.nix checks the
  # package on NixOS.
  doCheck = false;

  meta = {
    description = "A drop-in replacement for nix-daemon on a content-addressed store";
    license = lib.licenses.lgpl21Plus;
    mainProgram = "casnix";
    platforms = lib.platforms.linux;
  };
}
