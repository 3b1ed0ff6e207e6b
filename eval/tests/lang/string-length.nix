with builtins; [ (stringLength "") (stringLength "abc") (stringLength "é") ]
