let add1 = builtins.add 1; in [ (add1 2) (map add1 [ 1 2 ]) ]
