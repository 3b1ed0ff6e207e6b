with builtins; [ (match "a(b)c" "abc") (match "a(x)?c" "ac") (match "[0-9]+" "123") (match "a" "b") (match "(.*)\\.nix" "foo.nix") ]
