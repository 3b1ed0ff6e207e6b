# `__overrides` replaces a rec set's bindings wherever they come in the source, also when
# another binding is just the overridden name.
let
  first = rec { a = 1; x = a; __overrides = { a = 2; }; };
  last = rec { __overrides = { b = 20; }; y = b; b = 10; };
in
[ first.x first.a last.y last.b (rec { z = 1; w = z; }).w ]
