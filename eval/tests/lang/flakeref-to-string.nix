# builtins.flakeRefToString, and round trips through parseFlakeRef.
let
  rev = "0123456789abcdef0123456789abcdef01234567";
  roundTrip = r: builtins.flakeRefToString (builtins.parseFlakeRef r);
in
map builtins.flakeRefToString [
  { type = "github"; owner = "NixOS"; repo = "nixpkgs"; ref = "23.05"; dir = "lib"; }
  { type = "github"; owner = "NixOS"; repo = "nixpkgs"; inherit rev; narHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; }
  { type = "indirect"; id = "nixpkgs"; ref = "nixos-23.05"; }
  { type = "path"; path = "/src/a b"; lastModified = 1700000000; }
  { type = "git"; url = "https://example.org/repo.git"; ref = "main"; shallow = true; submodules = false; dir = "x"; }
  { type = "tarball"; url = "https://example.org/a.tar.gz"; }
  { type = "file"; url = "http://example.org/f"; }
]
++ map roundTrip [
  "github:NixOS/nixpkgs/23.05?dir=lib"
  "nixpkgs/${rev}"
  "git+ssh://git@example.org/repo?ref=dev&dir=a/b"
  "path:/x?narHash=sha256-47DEQpj8HBSa%2B/TImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D"
]
