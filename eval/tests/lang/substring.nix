with builtins; [ (substring 0 3 "hello") (substring 2 100 "hello") (substring 1 (-1) "hello") (substring 10 2 "abc") ]
