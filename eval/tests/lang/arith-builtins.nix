with builtins; [ (add 1 2) (sub 5 7) (mul 3 4) (div 9 3) (add 1.5 1) ]
