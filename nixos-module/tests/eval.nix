# Evaluates nixos-module/default.nix with nixpkgs' lib.evalModules next to stub declarations
# of the NixOS options it sets, in a few configurations, and checks the result.
#
# Returns { failures = [ "message" … ]; units = …; } (JSON-friendly): `failures` is empty when
# every check holds; `units` shows what was generated, for the reader of a failure.
# Run by nixos-module/tests/eval.sh (`nix-instantiate --eval --strict --json`); flake.sh passes
# the flake's nixosModules.default as `module`.
{ lib, module ? ../default.nix }:

let
  inherit (lib) mkOption types;

  # Stand-ins for packages: derivation-like sets (a bare store path string would be checked with
  # builtins.storePath where the evaluator has a store).
  fakePackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = {
    casnix = fakePackage "casnix-0.1.0";
    coreutils = fakePackage "coreutils-9.5";
    runc = fakePackage "runc-1.2.0";
    # The flake's module builds the package with callPackage.
    callPackage = _path: _args: pkgs.casnix;
  };

  # The NixOS options the module sets or reads, declared loosely: free-form where NixOS has
  # submodules (only what the checks read matters), with NixOS's defaults where the module
  # depends on them.
  freeform = types.submodule { freeformType = types.attrsOf types.anything; };
  unit = types.submodule {
    freeformType = types.attrsOf types.anything;
    options.enable = mkOption { type = types.bool; default = true; };
  };
  stubs = {
    options = {
      systemd.services = mkOption { type = types.attrsOf unit; default = { }; };
      systemd.sockets = mkOption { type = types.attrsOf unit; default = { }; };
      users.users = mkOption { type = types.attrsOf freeform; default = { }; };
      users.groups = mkOption { type = types.attrsOf freeform; default = { }; };
      environment.etc = mkOption { type = types.attrsOf freeform; default = { }; };
      nix.settings = mkOption { type = freeform; default = { }; };
      nix.nrBuildUsers = mkOption { type = types.int; default = 32; };
    };
  };

  # nix.settings as NixOS's nix module sets it by default (the relevant keys).
  nixosNixSettings = {
    trusted-users = [ "root" ];
    allowed-users = [ "*" ];
    max-jobs = "auto";
    cores = 0;
    sandbox = true;
    substituters = [ "https://cache.nixos.org/" ];
    trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
    build-users-group = "nixbld";
  };

  evaluate = configuration:
    (lib.evalModules {
      modules = [ stubs module { _module.args.pkgs = pkgs; } configuration ];
    }).config;

  # Configurations checked.
  defaults = evaluate {
    services.casnix.enable = true;
    nix.settings = nixosNixSettings;
  };
  fromNixSettings = evaluate {
    services.casnix.enable = true;
    nix.settings = nixosNixSettings // {
      trusted-users = [ "root" "@wheel" ];
      max-jobs = 4;
      cores = 2;
      sandbox = "relaxed";
      substituters = [ ];
    };
    nix.nrBuildUsers = 3;
  };
  customised = evaluate {
    services.casnix = {
      enable = true;
      sandboxBackend = "oci";
      logLevel = "debug";
      includeNixConf = false;
      settings = {
        allowed-users = [ "@users" ];
        keep-outputs = true;
        extra-sandbox-paths = [ "/bin/sh=/nix/store/00000000000000000000000000000000-busybox/bin/sh" ];
      };
    };
    nix.settings = nixosNixSettings;
  };
  withoutNixModule = (lib.evalModules {
    modules = [
      { options = removeAttrs stubs.options [ "nix" ]; }
      module
      { _module.args.pkgs = pkgs; services.casnix.enable = true; }
    ];
  }).config;
  disabled = evaluate { nix.settings = nixosNixSettings; };
  withProxy = (lib.evalModules {
    modules = [
      stubs
      { options.networking.proxy.envVars = mkOption { type = types.attrsOf types.str; default = { }; }; }
      module
      {
        _module.args.pkgs = pkgs;
        services.casnix.enable = true;
        networking.proxy.envVars.https_proxy = "http://proxy.example:3128";
      }
    ];
  }).config;

  service = config: config.systemd.services.casnix-daemon;
  socket = config: config.systemd.sockets.casnix-daemon;
  conf = config: config.environment.etc."casnix/nix.conf".text;
  confLines = config: lib.filter (line: line != "" && !(lib.hasPrefix "#" line)) (lib.splitString "\n" (conf config));

  # A check: `name` holds when `got` equals `expected`.
  check = name: got: expected:
    if got == expected then null
    else "${name}: expected ${builtins.toJSON expected}, got ${builtins.toJSON got}";

  checks = [
    # The socket takes Nix's path; the service runs the package's daemon.
    (check "socket path (ListenStream)" (socket defaults).socketConfig.ListenStream "/nix/var/nix/daemon-socket/socket")
    (check "socket started by sockets.target" (socket defaults).wantedBy [ "sockets.target" ])
    (check "socket mode" (socket defaults).socketConfig.SocketMode "0666")
    (check "ExecStart" (service defaults).serviceConfig.ExecStart "${pkgs.casnix}/bin/casnix-daemon")
    (check "ExecReload (SIGHUP rereads nix.conf)" (service defaults).serviceConfig.ExecReload "${pkgs.coreutils}/bin/kill -HUP $MAINPID")
    (check "Restart" (service defaults).serviceConfig.Restart "on-failure")
    (check "service requires its socket" (service defaults).requires [ "casnix-daemon.socket" ])
    (check "service is socket-activated, not started by a target" ((service defaults).wantedBy or [ ]) [ ])
    (check "service environment" (service defaults).environment { NIX_CONF_DIR = "/etc/casnix"; RUST_LOG = "info"; })
    (check "Delegate (runc's cgroups)" (service defaults).serviceConfig.Delegate true)
    (check "no hardening that breaks user namespaces"
      (lib.filter (key: (service defaults).serviceConfig ? ${key})
        [ "RestrictNamespaces" "PrivateUsers" "ProtectKernelTunables" "ProtectControlGroups" "ProtectKernelLogs" "ProtectHostname" "NoNewPrivileges" "PrivateDevices" ])
      [ ])
    (check "reload trigger is the configuration" (service defaults).reloadTriggers [ (conf defaults) ])
    (check "runc not on PATH for the native backend" (service defaults).path [ ])

    # nix-daemon's units are masked while casnix is enabled, untouched otherwise.
    (check "nix-daemon.service disabled" (defaults.systemd.services.nix-daemon.enable or "not set") false)
    (check "nix-daemon.socket disabled" (defaults.systemd.sockets.nix-daemon.enable or "not set") false)
    (check "disabled module: no casnix units" (builtins.attrNames disabled.systemd.services ++ builtins.attrNames disabled.systemd.sockets) [ ])
    (check "disabled module: no configuration file" disabled.environment.etc { })
    (check "disabled module: no build users" (builtins.attrNames disabled.users.users) [ ])

    # Build users as NixOS's nix-daemon module makes them.
    (check "build group" defaults.users.groups.nixbld { gid = 30000; })
    (check "32 build users by default" (builtins.length (builtins.attrNames defaults.users.users)) 32)
    (check "nixbld1" defaults.users.users.nixbld1 {
      description = "Nix build user 1";
      uid = 30001;
      isSystemUser = true;
      group = "nixbld";
      extraGroups = [ "nixbld" ];
    })
    (check "nixbld32's uid" defaults.users.users.nixbld32.uid 30032)
    (check "nix.nrBuildUsers build users" (builtins.attrNames fromNixSettings.users.users) [ "nixbld1" "nixbld2" "nixbld3" ])

    # The rendered configuration: Nix's file first, then casnix's settings (NixOS's defaults).
    (check "rendered configuration (defaults)" (confLines defaults) [
      "!include /etc/nix/nix.conf"
      "allowed-users = *"
      "build-users-group = nixbld"
      "cores = 0"
      "max-jobs = auto"
      "sandbox = true"
      "sandbox-backend = native"
      "substituters = https://cache.nixos.org/"
      "trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
      "trusted-users = root"
    ])
    # Defaults follow nix.settings.
    (check "rendered configuration (from nix.settings)" (confLines fromNixSettings) [
      "!include /etc/nix/nix.conf"
      "allowed-users = *"
      "build-users-group = nixbld"
      "cores = 2"
      "max-jobs = 4"
      "sandbox = relaxed"
      "sandbox-backend = native"
      "substituters = "
      "trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
      "trusted-users = root @wheel"
    ])
    # casnix's own options and free-form settings.
    (check "rendered configuration (customised)" (confLines customised) [
      "allowed-users = @users"
      "build-users-group = nixbld"
      "cores = 0"
      "extra-sandbox-paths = /bin/sh=/nix/store/00000000000000000000000000000000-busybox/bin/sh"
      "keep-outputs = true"
      "max-jobs = auto"
      "sandbox = true"
      "sandbox-backend = oci"
      "substituters = https://cache.nixos.org/"
      "trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
      "trusted-users = root"
    ])
    (check "oci backend puts runc on PATH" (service customised).path [ pkgs.runc ])
    (check "log level" (service customised).environment.RUST_LOG "debug")
    (check "the machine's proxy reaches the daemon" (service withProxy).environment
      { NIX_CONF_DIR = "/etc/casnix"; RUST_LOG = "info"; https_proxy = "http://proxy.example:3128"; })
    # Without NixOS's nix module (no nix.settings), Nix's own defaults.
    (check "rendered configuration (no nix module)" (confLines withoutNixModule) (confLines defaults))
  ];
in
{
  failures = lib.filter (failure: failure != null) checks;
  checked = builtins.length checks;
  units = {
    "casnix-daemon.socket" = socket defaults;
    "casnix-daemon.service" = service defaults;
    "casnix/nix.conf" = conf defaults;
  };
  # The rendered configurations (eval.sh has casnix-daemon read them).
  confs = { defaults = conf defaults; customised = conf customised; };
  # The units as files (for systemd-analyze verify), in the default and the customised set-up.
  unitFiles =
    let render = import ./unit-files.nix { inherit lib; };
    in {
      "casnix-daemon.socket" = render.socket (socket defaults);
      "casnix-daemon.service" = render.service (service defaults);
      "customised/casnix-daemon.service" = render.service (service customised);
    };
}
