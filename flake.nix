{
  description = "casnix: a drop-in replacement for nix-daemon on a content-addressed store";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # casnix-daemon is Linux-only (namespaces, seccomp).
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forEachSystem = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: prev: { casnix = final.callPackage ./package.nix { }; };

      packages = forEachSystem (pkgs: rec {
        casnix = pkgs.callPackage ./package.nix { };
        default = casnix;
      });

      # services.casnix, with the package built from this flake for the machine's pkgs.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.casnix.package = lib.mkDefault (pkgs.callPackage ./package.nix { });
        };

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = with pkgs; [ clippy rustfmt jq runc nix ];
          LIBSECCOMP_LIB_PATH = "${lib.getLib pkgs.libseccomp}/lib";
        };
      });

      checks = forEachSystem (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        # The NixOS VM test (needs KVM): casnix replaces nix-daemon, and back.
        nixos-module = pkgs.testers.runNixOSTest ./nixos-module/test.nix;
      });
    };
}
