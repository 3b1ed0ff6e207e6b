# POSIX bracket expressions: a backslash inside brackets is literal, `]` first is literal,
# `[:class:]` names; escaped special characters outside.
[
  (builtins.match "[\\d]+" "d\\d")
  (builtins.match "[]a]+" "a]a")
  (builtins.match "[^]a]" "b")
  (builtins.match "[a-c-]+" "a-c")
  (builtins.match "x[&&]y" "x&y")
  (builtins.match "[[:digit:][:space:]]+" "1 2")
  (builtins.match "a\\{}\\(\\)\\.\\*\\+\\?\\^\\$\\|\\[]\\\\" "a{}().*+?^$|[]\\")
  (builtins.split "[.]" "a.b")
  (builtins.match "a{2,}" "aaaa")
]
