# The parts of the VM test (nixos-module/test.nix) that can be produced without NixOS: its test
# script (Python) for a stand-in system path, and the derivation file the machine builds, with
# a stand-in busybox. nixos-module/tests/eval.sh checks that the script compiles and the file
# parses; the VM test itself needs NixOS, Nix and KVM.
{ lib }:

let
  test = import ../test.nix { inherit lib; };
  stubPkgs = {
    busybox = "/nix/store/00000000000000000000000000000000-busybox";
    callPackage = _path: _args: "/nix/store/00000000000000000000000000000000-casnix";
  };
  node = test.nodes.machine { pkgs = stubPkgs; };
in
{
  script = test.testScript {
    nodes.machine.system.build.toplevel = "/nix/store/00000000000000000000000000000000-nixos-system";
  };
  buildNix = node.environment.etc."casnix-test/build.nix".text;
}
