let
  a = { x = 1; y = 2; };
  b = { x = 10; z = 30; };
  f = v: with a; with b; [ x y z v ];
  g = x: with a; x;
  h = with a; rec { q = x; r = q + y; s = let y = 100; in y; };
  i = with { x = 5; }; let inner = p: with { p = 7; }; [ p x ]; in inner 9;
  j = with a; { inherit x; k = with b; { inherit y z; }; };
  l = with a; n: with b; m: [ n m x y z ];
in [ (f 0) (g 42) h i j (l 3 4) ]
