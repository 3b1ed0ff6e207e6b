builtins.toFile "greeting" "hello"
