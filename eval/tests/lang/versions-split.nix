builtins.splitVersion "1.2.3-pre4beta.5"
