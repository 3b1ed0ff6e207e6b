builtins.tryEval ({ a = throw "lazy"; }).a
