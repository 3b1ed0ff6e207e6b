builtins.toXML { a = 1; b = [ "x" null true 1.5 ]; c = x: x; d = { e, f ? 1, ... }: e; }
