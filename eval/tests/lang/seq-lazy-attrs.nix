builtins.seq { a = throw "x"; } 2
