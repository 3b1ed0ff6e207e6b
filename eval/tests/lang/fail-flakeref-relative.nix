builtins.parseFlakeRef "./relative/flake"
