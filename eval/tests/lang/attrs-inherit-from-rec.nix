rec { s = { a = 5; }; inherit (s) a; }
