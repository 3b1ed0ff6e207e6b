# builtins.parseFlakeRef on each kind of flake reference.
let rev = "0123456789abcdef0123456789ABCDEF01234567"; in
map builtins.parseFlakeRef [
  "github:NixOS/nixpkgs/23.05?dir=lib"
  "github:NixOS/nixpkgs/${rev}"
  "github:NixOS/nixpkgs?ref=release/23.05&host=github.example.org"
  "gitlab:veloren/veloren/feature/a/b"
  "sourcehut:~sircmpwn/hello"
  "nixpkgs"
  "nixpkgs/nixos-23.05"
  "flake:nixpkgs/nixos-23.05/${rev}"
  "/src/my%20flake?lastModified=1700000000&rev=${rev}"
  "path:/src/flake?dir=sub"
  "git+https://example.org/repo.git?ref=main&rev=${rev}&shallow=1&dir=pkgs&other=x"
  "git+file:///tmp/repo?submodules=1"
  "https://example.org/a.tar.gz?narHash=sha256-47DEQpj8HBSa%2B/TImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D"
  "tarball+https://example.org/download"
  "file+https://example.org/data.txt"
]
