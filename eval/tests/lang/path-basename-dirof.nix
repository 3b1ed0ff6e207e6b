with builtins; [ (baseNameOf "/a/b/c.nix") (baseNameOf "/a/b/") (dirOf "/a/b/c") (dirOf "/a") (dirOf "a") (dirOf /x/y) ]
