#!/usr/bin/env bash
# Evaluates the NixOS module (nixos-module/default.nix) with nixpkgs' lib.evalModules and checks
# the units, build users and configuration it generates (nixos-module/tests/eval.nix), under
# every evaluator at hand:
#   - Nix 2.8's nix-instantiate (on PATH; required),
#   - Nix 2.26's nix-instantiate in the Debian trixie root (when it exists and we are root),
#   - `casnix eval` (casnix's evaluator, which takes nix-instantiate --eval's flags), when the
#     casnix binary has that command: CASNIX_EVAL names the binary, else target/release/casnix.
# Each evaluator must report no failed check, and all must give the same JSON. The generated
# units then go through `systemd-analyze verify`, and the VM test's parts are checked.
#
# nixpkgs' lib: see common.sh (NIXPKGS_LIB_GIT, NIXPKGS_LIB, or the mirror beside the
# repository's parent). Without one the test says so and is skipped (exit 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

work=$(mktemp -d /tmp/casnix-module-eval.XXXXXX)
trap 'rm -rf "$work"' EXIT

. nixos-module/tests/common.sh
find_nixpkgs_lib "$work" "module eval" || exit 0

# The evaluators' common input: a file, so every evaluator needs only `--eval --strict --json FILE`.
cat >"$work/run.nix" <<EOF
import $repo/nixos-module/tests/eval.nix { lib = import $lib_dir; }
EOF

status=0
results=()

# Runs one evaluator (its name, then its command line up to the file) and checks its answer.
run_evaluator() {
    local name=$1
    shift
    local out="$work/$name.json" err="$work/$name.err"
    if ! "$@" "$work/run.nix" >"$out" 2>"$err"; then
        echo "FAIL module eval ($name): the evaluation failed:" >&2
        sed 's/^/    /' "$err" >&2
        status=1
        return
    fi
    local failed checked
    failed=$(jq '.failures | length' "$out")
    checked=$(jq '.checked' "$out")
    if [ "$failed" != 0 ]; then
        echo "FAIL module eval ($name): $failed of $checked checks failed:" >&2
        jq -r '.failures[] | "    " + .' "$out" >&2
        echo "  generated units and configuration:" >&2
        jq '.units' "$out" | sed 's/^/    /' >&2
        status=1
        return
    fi
    echo "ok   module eval ($name): $checked checks"
    results+=("$name")
}

command -v nix-instantiate >/dev/null || { echo "module eval: nix-instantiate (Nix 2.8) is not installed" >&2; exit 2; }
run_evaluator "nix-$(nix-instantiate --version | awk '{print $NF}')" nix-instantiate --eval --strict --json

if have_nix_2_26; then
    run_evaluator "nix-$(run_trixie nix-instantiate --version | awk '{print $NF}')" run_trixie nix-instantiate --eval --strict --json
else
    echo "skip module eval (Nix 2.26): no trixie root at $trixie, or not root"
fi

casnix=${CASNIX_EVAL:-target/release/casnix}
if [ -x "$casnix" ] && "$casnix" eval --help >/dev/null 2>&1; then
    run_evaluator "casnix-eval" "$casnix" eval --strict --json
else
    echo "skip module eval (casnix eval): $casnix has no 'eval' command yet"
fi

# systemd's own check of the generated units (unit-files.nix renders them as NixOS lays them
# out): unknown keys and bad values are failures. The stand-in store paths' programs become
# /bin/true (systemd-analyze wants them to exist).
first_json=$work/${results[0]:-none}.json
if [ ${#results[@]} -gt 0 ] && command -v systemd-analyze >/dev/null; then
    verify_failed=0
    for setup in default customised; do
        dir=$work/units-$setup
        mkdir "$dir"
        jq -r '.unitFiles["casnix-daemon.socket"]' "$first_json" >"$dir/casnix-daemon.socket"
        key=casnix-daemon.service
        [ "$setup" = customised ] && key=customised/casnix-daemon.service
        jq -r --arg k "$key" '.unitFiles[$k]' "$first_json" |
            sed -E 's|/nix/store/0{32}-[^/ ]*/bin/[^ ]*|/bin/true|g' >"$dir/casnix-daemon.service"
        if ! verify=$(systemd-analyze verify "$dir/casnix-daemon.socket" "$dir/casnix-daemon.service" 2>&1) || [ -n "$verify" ]; then
            echo "FAIL module eval: systemd-analyze verify of the generated units ($setup):" >&2
            echo "$verify" | sed 's/^/    /' >&2
            sed 's/^/    | /' "$dir/casnix-daemon.service" >&2
            verify_failed=1
            status=1
        fi
    done
    [ "$verify_failed" -ne 0 ] || echo "ok   generated units pass systemd-analyze verify"
else
    echo "skip generated units: no systemd-analyze, or no evaluation succeeded"
fi

# casnix-daemon reads the rendered configuration (default and customised set-ups) and serves a
# client with it: on a scratch root, NIX_CONF_DIR holding the file, `nix store ping` through the
# socket. (The default's `!include /etc/nix/nix.conf` reads this machine's file, if any.)
daemon=target/release/casnix-daemon
[ -n "${CASNIX_DAEMON:-}" ] && [ -x "$CASNIX_DAEMON" ] && daemon=$CASNIX_DAEMON
if [ ${#results[@]} -gt 0 ] && [ -x "$daemon" ]; then
    conf_failed=0
    for setup in defaults customised; do
        dir=$work/conf-$setup
        mkdir -p "$dir/conf" "$dir/client-conf" "$dir/store" "$dir/state"
        jq -r --arg k "$setup" '.confs[$k]' "$first_json" >"$dir/conf/nix.conf"
        env -i PATH="$PATH" NIX_CONF_DIR="$dir/conf" NIX_STORE_DIR="$dir/store" NIX_STATE_DIR="$dir/state" \
            NIX_LOG_DIR="$dir/log" "$daemon" --socket "$dir/socket" 2>"$dir/daemon.log" &
        daemon_pid=$!
        for _ in $(seq 100); do
            [ -S "$dir/socket" ] || ! kill -0 "$daemon_pid" 2>/dev/null && break
            sleep 0.1
        done
        if ! ping=$(NIX_REMOTE=daemon NIX_DAEMON_SOCKET_PATH="$dir/socket" NIX_STORE_DIR="$dir/store" NIX_STATE_DIR="$dir/state" \
            NIX_CONF_DIR="$dir/client-conf" nix --extra-experimental-features nix-command store ping 2>&1); then
            echo "FAIL module eval: casnix-daemon did not serve with the rendered configuration ($setup): $ping" >&2
            sed 's/^/    | /' "$dir/daemon.log" >&2
            conf_failed=1
            status=1
        fi
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    done
    [ "$conf_failed" -ne 0 ] || echo "ok   casnix-daemon serves with the rendered configurations"
else
    echo "skip rendered configuration: no evaluation succeeded, or no casnix-daemon at $daemon (cargo build --release -p daemon)"
fi

# The VM test (nixos-module/test.nix) cannot run here: check that its Python script compiles and
# the derivation file its machine builds parses.
cat >"$work/vm-test-parts.nix" <<EOF
import $repo/nixos-module/tests/vm-test-parts.nix { lib = import $lib_dir; }
EOF
if ! nix-instantiate --eval --strict --json "$work/vm-test-parts.nix" >"$work/vm-test-parts.json" 2>"$work/vm-test-parts.err"; then
    echo "FAIL module eval: evaluating the VM test's parts failed:" >&2
    sed 's/^/    /' "$work/vm-test-parts.err" >&2
    status=1
else
    jq -r .script "$work/vm-test-parts.json" >"$work/test-script.py"
    jq -r .buildNix "$work/vm-test-parts.json" >"$work/build.nix"
    if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$work/test-script.py" 2>"$work/py.err"; then
        echo "FAIL module eval: the VM test's script is not valid Python:" >&2
        sed 's/^/    /' "$work/py.err" >&2
        status=1
    elif ! nix-instantiate --parse "$work/build.nix" >/dev/null 2>"$work/parse.err"; then
        echo "FAIL module eval: the VM test's build.nix does not parse:" >&2
        sed 's/^/    /' "$work/parse.err" >&2
        status=1
    else
        echo "ok   VM test parts: the test script compiles, build.nix parses (the VM test itself needs KVM)"
    fi
fi

# Every evaluator that succeeded must agree on the whole result.
first=${results[0]:-}
for name in "${results[@]}"; do
    if ! cmp -s <(jq -S . "$work/$first.json") <(jq -S . "$work/$name.json"); then
        echo "FAIL module eval: $name and $first give different results:" >&2
        diff <(jq -S . "$work/$first.json") <(jq -S . "$work/$name.json") | head -40 >&2 || true
        status=1
    fi
done
exit "$status"
