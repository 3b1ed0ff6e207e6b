let x = { y = [ x ]; }; in x.y
