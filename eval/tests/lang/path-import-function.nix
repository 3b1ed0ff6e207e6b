import ./data/function.nix { n = 3; }
