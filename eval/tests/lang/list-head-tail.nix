with builtins; [ (head [1 2 3]) (tail [1 2 3]) ]
