import ./no-such-file.nix
