with builtins; length (attrNames { a = 1; })
