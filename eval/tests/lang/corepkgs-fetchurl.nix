# <nix/fetchurl.nix> gives the same derivations as Nix's own corepkgs file.
let
  fetchurl = import <nix/fetchurl.nix>;
  show = d: { inherit (d) drvPath outPath name; };
in
map show [
  (fetchurl { url = "file:///tmp/hello.txt"; sha256 = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"; })
  (fetchurl { url = "https://example.org/a.tar.gz"; hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; unpack = true; })
  (fetchurl { url = "https://example.org/tool"; sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d"; executable = true; name = "tool"; })
  (fetchurl { url = "https://example.org/x"; sha512 = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"; md5 = "900150983cd24fb0d6963f7d28e17f72"; })
  (fetchurl { url = "https://example.org/y"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; system = "ignored"; })
]
