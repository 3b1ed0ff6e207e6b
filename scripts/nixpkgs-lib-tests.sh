#!/usr/bin/env bash
# Runs nixpkgs' library tests with casnix's evaluator in place of Nix's:
#   lib/tests/misc.nix   must evaluate to `[ ]` (`casnix eval --strict`);
#   lib/tests/modules.sh runs with a `nix-instantiate` on its PATH that is `casnix eval`.
# The library comes from a local copy that is not committed: $NIXPKGS_LIB (a checkout), or the
# mirror of nix-community/nixpkgs.lib beside the repository ($NIXPKGS_LIB_GIT or
# ../.mirror/nix-community+nixpkgs.lib/repo). Without one it says "skipped" and exits 0.
# Usage: scripts/nixpkgs-lib-tests.sh [CASNIX_BINARY]; exit status 0 when both pass.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
casnix="${1:-$here/target/release/casnix}"
casnix="$(cd "$(dirname "$casnix")" && pwd)/$(basename "$casnix")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ -n "${NIXPKGS_LIB:-}" ]]; then
    lib="$NIXPKGS_LIB"
else
    git="${NIXPKGS_LIB_GIT:-$here/../.mirror/nix-community+nixpkgs.lib/repo}"
    [[ -d "$git" ]] || git="$(dirname "$here")/../.mirror/nix-community+nixpkgs.lib/repo"
    if [[ ! -d "$git" ]]; then
        echo "skipped: no nixpkgs.lib copy (set NIXPKGS_LIB or NIXPKGS_LIB_GIT)"
        exit 0
    fi
    lib="$work/nixpkgs.lib"
    mkdir -p "$lib"
    git --git-dir="$git" archive HEAD | tar -x -C "$lib"
fi
status=0

misc="$("$casnix" eval --strict "$lib/lib/tests/misc.nix" 2>"$work/misc.err")"
if [[ "$misc" == "[ ]" ]]; then
    echo "misc.nix: [ ] (all tests pass)"
else
    echo "misc.nix: FAILED:"; printf "%s\n" "$misc" | tail -n 20; tail -n 20 "$work/misc.err"
    status=1
fi

# modules.sh calls `nix-instantiate --timeout 1 --eval-only --show-trace --read-write-mode --json
# [--strict] [-E EXPR] [-A ATTR] ...`: `casnix eval` takes exactly those. --read-write-mode writes
# through a daemon (one test imports a file made by `builtins.toFile`): a casnix-daemon on a
# scratch root.
daemon="$(dirname "$casnix")/casnix-daemon"
root="$work/root"
mkdir -p "$root/store" "$root/state" "$root/log" "$root/conf" "$work/bin"
NIX_STORE_DIR="$root/store" NIX_STATE_DIR="$root/state" NIX_LOG_DIR="$root/log" NIX_CONF_DIR="$root/conf" \
    "$daemon" --socket "$root/socket" 2>"$work/daemon.log" &
daemon_pid=$!
trap 'kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    [[ -S "$root/socket" ]] || ! kill -0 "$daemon_pid" 2>/dev/null && break
    sleep 0.1
done
printf '#!/bin/sh\nexec "%s" eval "$@"\n' "$casnix" > "$work/bin/nix-instantiate"
chmod +x "$work/bin/nix-instantiate"
export NIX_REMOTE="unix://$root/socket" NIX_STORE_DIR="$root/store" NIX_STATE_DIR="$root/state"
export HOME="$work/home" NIX_PATH=
mkdir -p "$HOME"
if PATH="$work/bin:$PATH" bash "$lib/lib/tests/modules.sh" > "$work/modules.log" 2>&1; then
    echo "modules.sh: $(tail -n 3 "$work/modules.log" | tr "\n" " ")"
else
    echo "modules.sh: FAILED: $(tail -n 3 "$work/modules.log" | tr "\n" " ")"
    grep -E 'successful test|failed|FAILED|^error' "$work/modules.log" | tail -n 20
    status=1
fi
exit $status
