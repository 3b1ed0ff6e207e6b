builtins.pathExists ./let-basic.nix
