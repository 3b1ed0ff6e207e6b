builtins.tryEval (abort "hard")
