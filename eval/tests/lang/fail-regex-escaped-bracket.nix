builtins.match "a\\]" "a]"
