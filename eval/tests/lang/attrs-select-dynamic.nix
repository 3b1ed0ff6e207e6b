let s = { ab = 1; }; x = "b"; in s.${"a" + x}
