let s = { a = s.b; b = 1; }; in s.a
