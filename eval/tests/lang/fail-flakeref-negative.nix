builtins.flakeRefToString { type = "github"; owner = "NixOS"; repo = "nixpkgs"; lastModified = -1; }
