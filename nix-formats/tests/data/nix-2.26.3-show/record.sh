#!/bin/sh
# Re-records this folder's expectations with a real Nix 2.26.3 (see README.md). Usage:
#   record.sh NIX_RUNNER
# where NIX_RUNNER runs its arguments as a command with Nix 2.26.3 on PATH, with /tmp shared and the
# experimental features nix-command, ca-derivations, dynamic-derivations and impure-derivations on.
set -eu
runner=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/record-drv.XXXXXX)
cp "$here/exprs.nix" "$here/invalid-utf8.nix" "$here/binary.bin" "$work/"
store="$work/root"
$runner nix-instantiate --store "$store" "$work/exprs.nix" > "$work/top.txt"
rm -rf "$here/store"
mkdir "$here/store"
cp "$store"/nix/store/*.drv "$here/store/"
chmod 644 "$here"/store/*.drv
# shellcheck disable=SC2046
$runner nix derivation show --store "$store" $(cat "$work/top.txt") > "$here/show-all.json"
chain=$(grep -- '-chain.drv$' "$work/top.txt")
$runner nix derivation show --store "$store" --recursive "$chain" > "$here/show-recursive-chain.json"
bad=$($runner nix-instantiate --store "$work/root2" "$work/invalid-utf8.nix")
cp "$work/root2$bad" "$here/invalid-utf8.drv"
chmod 644 "$here/invalid-utf8.drv"
basename "$bad" > "$here/invalid-utf8.path"
if $runner nix derivation show --store "$work/root2" "$bad" > /dev/null 2> "$here/show-invalid-utf8.stderr"; then
    echo "expected nix derivation show to fail" >&2
    exit 1
fi
rm -rf "$work"
