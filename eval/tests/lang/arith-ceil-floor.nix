with builtins; [ (ceil 1.2) (floor 1.8) (ceil (-1.5)) (floor (-1.5)) (ceil 3) ]
