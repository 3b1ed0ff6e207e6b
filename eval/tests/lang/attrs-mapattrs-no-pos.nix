let p = builtins.unsafeGetAttrPos "a" (builtins.mapAttrs (k: v: v) { a = 1; }); in p
