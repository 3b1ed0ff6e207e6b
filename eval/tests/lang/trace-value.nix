builtins.trace "message" 7
