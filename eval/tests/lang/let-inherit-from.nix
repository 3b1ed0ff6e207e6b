let s = { x = 1; y = 2; }; inherit (s) x y; in x + y
