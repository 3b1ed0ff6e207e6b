map builtins.parseDrvName [ "hello-2.10" "nix-unstable-2024-01-01" "name" "a-b-1c" ]
