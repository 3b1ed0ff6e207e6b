with { x = 1; }; let y = x + 1; in y
