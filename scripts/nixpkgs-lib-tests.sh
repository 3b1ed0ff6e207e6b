#!/usr/bin/env bash
# Runs nixpkgs' library tests with casnix in place of nix-instantiate: lib/tests/misc.nix must
# evaluate to `[ ]`, and lib/tests/modules.sh runs with a shim directory first on PATH whose
# `nix-instantiate` is `casnix eval` (with --eval/--eval-only; `casnix instantiate` otherwise).
# The tests come from a local copy of nix-community/nixpkgs.lib (not committed): $NIXPKGS_LIB_DIR
# (a checkout), else extracted from a git directory: $NIXPKGS_LIB_GIT, else
# ../.mirror/nix-community+nixpkgs.lib/repo beside the repository's parent. Without one it says
# "skipped" and exits 0.
# Usage: scripts/nixpkgs-lib-tests.sh [CASNIX_BINARY]   (default target/release/casnix)
# Prints modules.sh's summary ("N Pass / M Fail"); exits 1 when misc.nix is not `[ ]` or a
# module test fails. The full modules.sh log is left in $OUT/modules.log (/tmp/casnix-nixpkgs-lib).
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
casnix="${1:-$here/target/release/casnix}"
if [[ ! -x "$casnix" ]]; then echo "no casnix binary at $casnix (cargo build --release -p cli)" >&2; exit 1; fi
casnix="$(cd "$(dirname "$casnix")" && pwd)/$(basename "$casnix")"
out="${OUT:-/tmp/casnix-nixpkgs-lib}"
rm -rf "$out"; mkdir -p "$out/bin"
if [[ -n "${NIXPKGS_LIB_DIR:-}" ]]; then
    src="$NIXPKGS_LIB_DIR"
else
    git="${NIXPKGS_LIB_GIT:-}"
    if [[ -z "$git" ]]; then
        for candidate in "$here/../.mirror/nix-community+nixpkgs.lib/repo" "$here/../../.mirror/nix-community+nixpkgs.lib/repo"; do
            if git --git-dir="$candidate" rev-parse -q --verify HEAD >/dev/null 2>&1; then git="$candidate"; break; fi
        done
    fi
    if [[ -z "$git" ]]; then
        echo "nixpkgs-lib-tests: skipped: no nixpkgs.lib checkout (set NIXPKGS_LIB_DIR or NIXPKGS_LIB_GIT)"
        exit 0
    fi
    mkdir -p "$out/src"
    git --git-dir="$git" archive HEAD | tar -x -C "$out/src"
    src="$out/src"
fi

# The shim: nix-instantiate's flags that modules.sh passes are casnix eval's own.
cat > "$out/bin/nix-instantiate" <<SHIM
#!/usr/bin/env bash
for a in "\$@"; do
    case "\$a" in --eval|--eval-only) exec "$casnix" eval "\$@" ;; esac
done
exec "$casnix" instantiate "\$@"
SHIM
chmod +x "$out/bin/nix-instantiate"

status=0
export NIX_PATH= HOME="$out/home"
mkdir -p "$HOME"
# modules.sh evaluates with --read-write-mode (one test imports a `toFile` text): a casnix-daemon
# on an isolated root under $out takes the writes, when one is built.
daemon="${CASNIX_DAEMON:-$here/target/release/casnix-daemon}"
if [[ -x "$daemon" ]]; then
    mkdir -p "$out/root/store" "$out/root/state" "$out/root/log" "$out/root/conf"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\n' > "$out/root/conf/nix.conf"
    export NIX_STORE_DIR="$out/root/store" NIX_STATE_DIR="$out/root/state" NIX_LOG_DIR="$out/root/log" \
        NIX_CONF_DIR="$out/root/conf" NIX_DAEMON_SOCKET_PATH="$out/root/socket"
    NIX_REMOTE=local "$daemon" > "$out/daemon.log" 2>&1 &
    daemon_pid=$!
    trap 'kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null' EXIT
    for _ in $(seq 200); do [[ -S "$NIX_DAEMON_SOCKET_PATH" ]] && break; sleep 0.05; done
    export NIX_REMOTE=daemon
else
    echo "note: no casnix-daemon at $daemon (cargo build --release -p daemon): evaluating without a store"
    export NIX_STORE_DIR="${NIX_STORE_DIR:-/nix/store}"
fi
misc="$(PATH="$out/bin:$PATH" nix-instantiate --eval --strict "$src/lib/tests/misc.nix" 2> "$out/misc.err")"
if [[ "$misc" == "[ ]" ]]; then
    echo "misc.nix: [ ] (pass)"
else
    echo "misc.nix: FAILED:"; echo "$misc" | head -40; head -40 "$out/misc.err"
    status=1
fi
if PATH="$out/bin:$PATH" bash "$src/lib/tests/modules.sh" > "$out/modules.log" 2>&1; then
    echo "modules.sh: passed"
else
    echo "modules.sh: FAILED (log: $out/modules.log)"
    grep -a -B1 -A12 "TEST FAILED" "$out/modules.log" | head -60
    status=1
fi
grep -a -A2 "====== module tests ======" "$out/modules.log" | tail -2 | tr '\n' ' '; echo
exit $status
