builtins.attrValues (builtins.getContext "${./data/dir}")
