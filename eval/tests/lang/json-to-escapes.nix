builtins.toJSON "tab\t quote\" back\\ ctrl\u0001"
