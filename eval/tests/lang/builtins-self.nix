builtins.builtins.length [ 1 ]
