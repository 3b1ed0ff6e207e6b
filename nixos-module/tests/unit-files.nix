# Renders the module's systemd.services/systemd.sockets definitions (as evaluated by eval.nix)
# into unit files, the way NixOS's systemd module lays them out: description, documentation and
# dependencies in [Unit] with unitConfig, environment and serviceConfig in [Service],
# socketConfig in [Socket], wantedBy in [Install]; lists become repeated keys, Booleans true or
# false. eval.sh hands the result to `systemd-analyze verify`, which reports unknown keys and bad
# values. (NixOS's own renderer is in nixpkgs, not in nixpkgs.lib; this one covers what the module
# sets.)
{ lib }:

let
  value = v: if builtins.isBool v then lib.boolToString v else toString v;
  lines = name: v:
    if builtins.isList v then lib.concatMapStrings (item: "${name}=${value item}\n") v
    else "${name}=${value v}\n";
  section = name: attrs:
    "[${name}]\n" + lib.concatStrings (lib.mapAttrsToList lines attrs);
  joined = list: lib.concatStringsSep " " list;
  unitSection = unit:
    section "Unit" (
      lib.optionalAttrs (unit ? description) { Description = unit.description; }
      // lib.optionalAttrs (unit ? documentation) { Documentation = joined unit.documentation; }
      // lib.optionalAttrs (unit ? requires) { Requires = joined unit.requires; }
      // lib.optionalAttrs (unit ? after) { After = joined unit.after; }
      // lib.optionalAttrs (unit ? before) { Before = joined unit.before; }
      // (unit.unitConfig or { })
    );
  installSection = unit:
    lib.optionalString ((unit.wantedBy or [ ]) != [ ]) (section "Install" { WantedBy = joined unit.wantedBy; });
in
{
  service = unit:
    unitSection unit
    + section "Service" (
      { Environment = lib.mapAttrsToList (name: v: "\"${name}=${v}\"") unit.environment; }
      // unit.serviceConfig
    )
    + installSection unit;
  socket = unit: unitSection unit + section "Socket" unit.socketConfig + installSection unit;
}
