let a = { type = "derivation"; outPath = "/x"; n = 1; }; b = { type = "derivation"; outPath = "/x"; n = 2; }; in a == b
