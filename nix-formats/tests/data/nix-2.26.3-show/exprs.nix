# Derivations instantiated with Nix 2.26.3 to record `nix derivation show` (see README.md).
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  src = builtins.toFile "src.txt" "hello\n";
  script = builtins.toFile "build.sh" ''echo "building $out"'';
  ctrl = builtins.fromJSON ''"\u0001\u0008\u000c\u001f\u007f"'';

  fixedFlat256 = mk { name = "fixed-flat-sha256"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; };
  fixedFlat1 = mk { name = "fixed-flat-sha1"; outputHashAlgo = "sha1"; outputHash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"; };
  fixedFlat512 = mk { name = "fixed-flat-sha512"; outputHashAlgo = "sha512"; outputHash = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"; };
  fixedNar256 = mk { name = "fixed-nar-sha256"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"; };
  fixedNar1 = mk { name = "fixed-nar-sha1"; outputHashMode = "nar"; outputHash = "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk="; };
  fixedText = mk { name = "fixed-text"; outputHashMode = "text"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; };

  multi = mk {
    name = "multi";
    outputs = [ "out" "dev" "lib" ];
    args = [ "-c" "echo \"quoted\" 'single' back\\slash\nnewline\ttab\rcr é 🦀 $HOME" ];
  };

  escapes = mk {
    name = "escapes";
    quotes = "a \"quoted\" string";
    backslashes = "C:\\path\\to\\thing \\n is not a newline";
    newlines = "line one\nline two\r\nline three\n";
    tabs = "col1\tcol2\t";
    unicode = "héllo wörld — 日本語 🦀";
    control = ctrl;
    dollar = "\${not interpolated} $out";
    empty = "";
    "weird name with spaces" = "v";
    list = [ "a" "b c" 1 true false null ];
    number = 42;
    float = 1.5;
    boolTrue = true;
    boolFalse = false;
    nullValue = null;
  };

  withSources = mk {
    name = "with-sources";
    inherit src;
    script = script;
    path = ./exprs.nix;
    args = [ script ];
  };

  dependent = mk {
    name = "dependent";
    outputs = [ "out" "doc" ];
    fixed = fixedNar256;
    flat = fixedFlat1;
    dev = multi.dev;
    both = "${multi.lib} ${multi.out}";
    e = escapes;
    s = withSources;
  };

  chain = mk { name = "chain"; dep = dependent; fetch = fixedFlat256; fetch2 = fixedFlat512; t = fixedText; };

  structured = mk {
    name = "structured";
    __structuredAttrs = true;
    outputs = [ "out" "bin" ];
    dep = multi.dev;
    nested = { a = [ 1 2 { b = "c\n\"d\""; } ]; e = null; f = 2.5; g = ctrl; };
    outputChecks.out.allowedReferences = [ ];
    unicode = "🦀";
  };

  passAsFile = mk {
    name = "pass-as-file";
    passAsFile = [ "big" "other" ];
    big = "lots of text\nwith lines\n";
    other = "x";
    dep = fixedNar1;
  };

  ca = mk {
    name = "ca-floating";
    __contentAddressed = true;
    outputs = [ "out" "dev" ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
  };

  caFlat = mk {
    name = "ca-floating-flat-sha512";
    __contentAddressed = true;
    outputHashMode = "flat";
    outputHashAlgo = "sha512";
  };

  dependsOnCa = mk { name = "depends-on-ca"; outputs = [ "out" "man" ]; dep = ca.dev; other = multi; };

  impure = mk { name = "impure"; __impure = true; };
  dependsOnImpure = mk { name = "depends-on-impure"; dep = impure; };

  producer = mk {
    name = "producer.drv";
    __contentAddressed = true;
    outputHashMode = "text";
    outputHashAlgo = "sha256";
  };
  dynamic = mk {
    name = "dynamic";
    dep = builtins.outputOf producer.outPath "out";
    other = multi.dev;
  };

  builtinFetch = derivation {
    name = "builtin-fetch";
    system = "builtin";
    builder = "builtin:fetchurl";
    url = "http://example.invalid/x";
    outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    outputHashMode = "flat";
    urls = [ "http://example.invalid/x" ];
  };
in
{
  inherit fixedFlat256 fixedFlat1 fixedFlat512 fixedNar256 fixedNar1 fixedText multi escapes
    withSources dependent chain structured passAsFile ca caFlat dependsOnCa impure dependsOnImpure
    producer dynamic builtinFetch;
}
