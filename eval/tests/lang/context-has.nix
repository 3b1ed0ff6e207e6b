with builtins; [ (hasContext "x") (hasContext (toString ./data/dir)) (hasContext "${./data/dir}") ]
