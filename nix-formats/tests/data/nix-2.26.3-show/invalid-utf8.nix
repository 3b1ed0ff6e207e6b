# A derivation whose environment holds bytes that are not UTF-8 (see README.md).
derivation {
  name = "invalid-utf8";
  system = "x86_64-linux";
  builder = "/bin/sh";
  value = builtins.readFile ./binary.bin;
}
