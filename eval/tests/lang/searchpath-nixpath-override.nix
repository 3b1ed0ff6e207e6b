# `<name>` is `__findFile __nixPath "name"`: a lexical __nixPath changes the search, and
# a lexical __findFile replaces the lookup.
let
  viaLet = let __nixPath = [ { prefix = "here"; path = ./.; } ]; in <here/searchpath-nixpath-override.nix>;
  viaFindFile = let __findFile = path: name: { inherit path name; }; in <some/thing>;
in
[ (baseNameOf viaLet) viaFindFile.name (builtins.length viaFindFile.path) ]
