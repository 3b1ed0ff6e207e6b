builtins.fromTOML "a = 1\nb = \"x\"\n[t]\nc = [1, 2]\nd = 1.5\n[[arr]]\ne = true\n"
