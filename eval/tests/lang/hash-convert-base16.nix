builtins.convertHash { hash = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"; hashAlgo = "sha256"; toHashFormat = "base16"; }
