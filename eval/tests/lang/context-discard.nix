builtins.hasContext (builtins.unsafeDiscardStringContext "${./data/dir}")
