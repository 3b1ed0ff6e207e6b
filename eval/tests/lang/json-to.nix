builtins.toJSON { a = [ 1 2.5 "s" null true ]; b = { c = "x\ny"; }; }
