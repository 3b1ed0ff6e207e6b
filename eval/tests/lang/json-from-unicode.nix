builtins.fromJSON ''"\u00e9\u0041"''
