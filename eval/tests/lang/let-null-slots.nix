# Slots bound to null, and let bindings reading later ones before they are set.
let
  f = { a ? null, b ? a, c ? b }: [ a b c ];
  n = null;
  m = n;
  p = q;
  q = null;
  r = rec { s = null; t = s; u = v; v = null; };
in [ (f { }) (f { a = 1; }) (f { b = null; c = 2; }) m p r ]
