let x = "world"; n = 3; in "hello ${x}, ${toString n}!"
