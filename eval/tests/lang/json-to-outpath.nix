builtins.toJSON { x = { outPath = "/p"; }; y = { __toString = s: "str"; }; }
