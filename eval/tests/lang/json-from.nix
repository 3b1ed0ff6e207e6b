builtins.fromJSON ''{"a": [1, 2.5, "x", null, true, false], "b": {"c": -3}, "d": 1e3}''
