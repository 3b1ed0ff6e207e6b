builtins.pathExists ./does-not-exist.nix
