# casnix's <nix/fetchurl.nix>: a fixed-output derivation downloaded by the daemon's
# builtin:fetchurl builder. It takes the arguments Nix's own corepkgs file takes and gives the
# derivation the same attributes, so that the .drv (and its store path) is the same as Nix's.
{ system ? "", url, hash ? "", md5 ? "", sha1 ? "", sha256 ? "", sha512 ? "",
  outputHash ? null, outputHashAlgo ? null,
  executable ? false, unpack ? false, name ? baseNameOf (toString url), impure ? false }:
let
  # An SRI `hash` names its own algorithm; otherwise the first legacy hash given, by strength,
  # falling back to sha256 (possibly empty).
  legacy = builtins.head (
    builtins.filter (h: h.value != "") [
      { algo = "sha512"; value = sha512; }
      { algo = "sha1"; value = sha1; }
      { algo = "md5"; value = md5; }
    ]
    ++ [ { algo = "sha256"; value = sha256; } ]
  );
  chosen = if hash != "" then { algo = ""; value = hash; } else legacy;
  checked = {
    outputHash = if outputHash == null then chosen.value else outputHash;
    outputHashAlgo = if outputHashAlgo == null then chosen.algo else outputHashAlgo;
  };
in
derivation ({
  inherit name url executable unpack;
  builder = "builtin:fetchurl";
  system = "builtin";
  outputHashMode = if unpack || executable then "recursive" else "flat";
  urls = [ url ];
  preferLocalBuild = true;
  # Has no effect on the builtin builder; part of the derivation all the same.
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
} // (if impure then { __impure = true; } else checked))
