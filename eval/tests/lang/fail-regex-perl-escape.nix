builtins.match "a\\d+" "a12"
