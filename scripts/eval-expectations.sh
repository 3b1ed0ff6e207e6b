#!/usr/bin/env bash
# Regenerates eval/tests/lang/*.exp and fail-*.err with Nix 2.26's nix-instantiate, so that the
# expectations are Nix's: NAME.exp is `nix-instantiate --eval --strict NAME.nix`'s stdout,
# fail-NAME.err the message of the error it reports (the text after the last "error: ").
# Nix 2.26 runs from a root given as $NIX226_ROOT (default /opt/trixie), entered with unshare and
# chroot (needs root); or set $NIX_INSTANTIATE to a nix-instantiate 2.26 on this system.
# Usage: scripts/eval-expectations.sh [NAME...]
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="$here/eval/tests/lang"
root="${NIX226_ROOT:-/opt/trixie}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/store" "$tmp/state" "$tmp/log" "$tmp/conf"
# flakes: for builtins.parseFlakeRef and flakeRefToString, which casnix always has.
echo "experimental-features = flakes" > "$tmp/conf/nix.conf"
export NIX_STORE_DIR=/nix/store NIX_STATE_DIR="$tmp/state" NIX_LOG_DIR="$tmp/log" NIX_CONF_DIR="$tmp/conf" NIX_REMOTE=local NIX_PATH= HOME=/fake-home
nix_instantiate() {
    if [[ -n "${NIX_INSTANTIATE:-}" ]]; then
        "$NIX_INSTANTIATE" "$@"
    else
        unshare -m sh -c 'for d in proc dev tmp work; do mkdir -p "$0/$d"; mount --rbind "/$d" "$0/$d"; done; cd "$1"; shift; exec chroot "$0" sh -c "cd \"\$0\" && exec nix-instantiate \"\$@\"" "$PWD" "$@"' "$root" "$PWD" "$@"
    fi
}
cd "$dir"
if [[ $# -gt 0 ]]; then names=("$@"); else names=(); for f in *.nix; do names+=("${f%.nix}"); done; fi
for name in "${names[@]}"; do
    if [[ "$name" == fail-* ]]; then
        if nix_instantiate --eval --strict "$name.nix" > /dev/null 2> "$tmp/err"; then
            echo "WARNING: $name.nix evaluated successfully under Nix" >&2
            continue
        fi
        # The message of the innermost error: the line after the last "error:" marker.
        awk '/^ *error: /{sub(/^ *error: /, ""); line=$0} END{print line}' "$tmp/err" | sed "s!$dir!/pwd!g" > "$name.err"
    else
        if nix_instantiate --eval --strict "$name.nix" > "$tmp/out" 2> "$tmp/err"; then
            sed "s!$dir!/pwd!g" "$tmp/out" > "$name.exp"
        else
            echo "WARNING: $name.nix failed under Nix: $(tail -n 3 "$tmp/err")" >&2
            rm -f "$name.exp"
        fi
    fi
done
