with builtins; [ (replaceStrings ["a" "b"] ["A" "BB"] "abcab") (replaceStrings [""] ["-"] "abc") (replaceStrings ["oo"] ["0"] "foooo") ]
