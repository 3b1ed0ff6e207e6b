builtins.compareVersions builtins.nixVersion "2.26" >= 0
