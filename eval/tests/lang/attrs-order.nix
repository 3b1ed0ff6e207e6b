builtins.attrNames { z = 1; a = 2; B = 3; _x = 4; "1" = 5; }
