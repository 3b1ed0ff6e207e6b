builtins.split "," "abc"
