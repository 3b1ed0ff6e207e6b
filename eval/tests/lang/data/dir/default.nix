{ inner = "from default.nix"; }
