builtins.match "[[:alpha:]]+([[:digit:]]+)" "abc123"
