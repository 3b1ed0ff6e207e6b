let s = { a = 1; }; in [ (s.b or 2) (s.a or 3) (s.x.y.z or "deep") ]
