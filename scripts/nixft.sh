#!/usr/bin/env bash
# Runs Nix 2.26.3's own functional tests against casnix-daemon with the runner in
# ../shared/nixft (see its README), and checks that every test listed in
# scripts/nixft-expected-pass.txt passes: the tests casnix-daemon is known to pass, so a
# regression fails this script. Prints the runner's summary of the whole selection.
#
# Usage: scripts/nixft.sh [TEST...]   (default: the tests of nixft-expected-pass.txt)
# NIXFT_DAEMON_ON_PATH=0 runs the client's own nix-daemon for ssh stores instead.
# Needs a git directory of NixOS/nix with the tag 2.26.3: NIXFT_NIX_GIT, else
# ../.mirror/NixOS+nix/repo beside the repository's parent. Without one it says so and exits 0:
# the tests come from upstream and are not stored here.
set -euo pipefail
cd "$(dirname "$0")/.."

runner=../shared/nixft
if [ ! -x "$runner/run.sh" ]; then
    echo "nixft: no runner at $runner; skipped" >&2
    exit 0
fi
if [ -z "${NIXFT_NIX_GIT:-}" ]; then
    for candidate in ../.mirror/NixOS+nix/repo ../../.mirror/NixOS+nix/repo; do
        if git --git-dir="$candidate" rev-parse -q --verify 2.26.3 >/dev/null 2>&1; then
            NIXFT_NIX_GIT=$(cd "$candidate" && pwd)
            break
        fi
    done
fi
if [ -z "${NIXFT_NIX_GIT:-}" ]; then
    echo "nixft: no NixOS/nix git directory with tag 2.26.3 (set NIXFT_NIX_GIT); skipped" >&2
    exit 0
fi
export NIXFT_NIX_GIT
# casnix-daemon is also the `nix-daemon` on the tests' PATH: `ssh-ng://localhost` stores and the
# trustless remote builds (nix-daemon-untrusting) run it with `--stdio`, not the client's daemon.
export NIXFT_DAEMON_ON_PATH=${NIXFT_DAEMON_ON_PATH:-1}

cargo build --release --locked -p daemon --bin casnix-daemon 2>&1
daemon=target/release/casnix-daemon
pkg=$(mktemp -d /tmp/casnix-nixft-pkg.XXXXXX)
trap 'rm -rf "$pkg"' EXIT
"$runner/make-shim.sh" "$pkg" "$daemon" "$("$daemon" --version | head -n 1 | cut -d' ' -f3)" >/dev/null

if [ $# -gt 0 ]; then
    tests=("$@")
else
    mapfile -t tests < <(grep -v '^#' scripts/nixft-expected-pass.txt | grep -v '^$')
fi
out=$(mktemp)
status=0
"$runner/run.sh" "$pkg" "${tests[@]}" >"$out" || status=$?
cat "$out"
if [ "$status" -ne 0 ]; then
    echo "nixft: tests that casnix-daemon passed before now fail:" >&2
    grep -E '^(FAIL|SKIP) ' "$out" >&2 || true
    rm -f "$out"
    exit 1
fi
rm -f "$out"
