builtins.path { path = ./data/dir; name = "src"; }
