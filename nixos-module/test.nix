# NixOS VM test of services.casnix (needs Nix and KVM):
#   nix flake check                 (checks.<system>.nixos-module)
#   nix-build -E '(import <nixpkgs> { }).testers.runNixOSTest ./nixos-module/test.nix'
#
# The machine boots with casnix-daemon in place of nix-daemon; a normal user builds a derivation
# through the socket (sandboxed, as a build user); then the machine switches to a specialisation
# without casnix, where nix-daemon serves the same store: the output is still valid and is not
# built again.
{ lib, ... }:

{
  name = "casnix";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ ./default.nix ];

      services.casnix = {
        enable = true;
        package = pkgs.callPackage ../package.nix { };
      };

      # The VM has no network.
      nix.settings.substituters = lib.mkForce [ ];

      users.users.alice.isNormalUser = true;

      # A derivation whose builder is already in the VM's store (`builtins.storePath` gives the
      # derivation busybox as an input, so the sandbox has it and its closure).
      environment.etc."casnix-test/build.nix".text = ''
        let
          busybox = builtins.storePath "${pkgs.busybox}";
        in
        derivation {
          name = "built-through-casnix";
          system = builtins.currentSystem;
          builder = "''${busybox}/bin/sh";
          args = [ "-c" "echo built by casnix > $out" ];
        }
      '';

      # The same machine with nix-daemon again.
      specialisation.nix-daemon.configuration = {
        services.casnix.enable = lib.mkForce false;
      };
    };

  testScript =
    { nodes, ... }:
    let
      withNixDaemon = "${nodes.machine.system.build.toplevel}/specialisation/nix-daemon";
    in
    ''
      machine.wait_for_unit("sockets.target")

      with subtest("casnix-daemon.socket has the socket, nix-daemon's units are masked"):
          machine.succeed("systemctl is-active casnix-daemon.socket")
          machine.succeed("test -S /nix/var/nix/daemon-socket/socket")
          machine.succeed("test \"$(systemctl show -P LoadState nix-daemon.socket)\" = masked")
          machine.succeed("test \"$(systemctl show -P LoadState nix-daemon.service)\" = masked")
          machine.succeed("grep -qx 'sandbox-backend = native' /etc/casnix/nix.conf")
          machine.succeed("grep -qx '!include /etc/nix/nix.conf' /etc/casnix/nix.conf")
          machine.succeed("getent group nixbld && id nixbld1")

      with subtest("a normal user builds through casnix-daemon"):
          out = machine.succeed("su - alice -c 'nix-build --no-out-link /etc/casnix-test/build.nix'").strip()
          machine.succeed(f"grep -qx 'built by casnix' {out}")
          # The first connection started the service, with the socket passed by systemd.
          machine.succeed("systemctl is-active casnix-daemon.service")
          machine.succeed("journalctl -u casnix-daemon.service | grep -q 'using the socket passed by systemd'")
          machine.succeed(f"su - alice -c 'nix-store --query --hash {out}'")

      with subtest("back to nix-daemon: the same store"):
          machine.succeed("${withNixDaemon}/bin/switch-to-configuration test")
          machine.wait_for_unit("nix-daemon.socket")
          machine.fail("systemctl is-active casnix-daemon.socket")
          machine.succeed(f"su - alice -c 'nix-store --query --hash {out}'")
          machine.succeed("systemctl is-active nix-daemon.service")
          again = machine.succeed("su - alice -c 'nix-build --no-out-link /etc/casnix-test/build.nix 2>&1'")
          assert again.strip().splitlines()[-1] == out, f"nix-daemon built another path: {again}"
          assert "will be built" not in again, f"nix-daemon built the output again: {again}"
          machine.succeed(f"nix-store --verify-path {out}")
    '';
}
