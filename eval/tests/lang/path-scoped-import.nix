builtins.scopedImport { x = 40; } ./data/uses-x.nix
