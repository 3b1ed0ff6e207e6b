let s = { a = throw "no"; b.c = throw "no"; }; in [ (s ? a) (s ? b.c) (s ? b.d) ]
