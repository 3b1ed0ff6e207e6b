[ (builtins.match "a.b" "a\nb") (builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" "\n x\ny \n") ]
