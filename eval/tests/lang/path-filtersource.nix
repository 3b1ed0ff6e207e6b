builtins.filterSource (p: t: baseNameOf p != "skip.txt") ./data/dir
