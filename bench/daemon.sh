#!/usr/bin/env bash
# casnix-daemon against Nix 2.8's nix-daemon, in the same run, with the same clients:
#   1. QueryPathInfo round trips per second (daemon/examples/query_path_info: one connection,
#      COUNT sequential calls; the best of three such runs, for each daemon alike, since one
#      run swings with how quickly this machine's idle processors wake);
#   2. `nix-store --add` of a tree of 20,000 small files (wall seconds);
#   3. `nix copy --to unix://SOCKET` of a 500-path closure (a chain of text files, each
#      referring to the previous one), built first in a separate local store (wall seconds).
# Both daemons serve the same store directory in turn (wiped in between), so the same closure
# can be copied to each. Prints each figure and casnix/nix ratios.
#
# Usage: bench/daemon.sh [WORK_DIR] [COUNT]   (default /tmp/casnix-bench-daemon, 20000)
# SETTLE (default 70) seconds are waited after deleting the previous daemon's store (0: none).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/casnix-bench-daemon}
count=${2:-20000}
settle=${SETTLE:-70}

for tool in nix-daemon nix-store nix-instantiate nix; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (apt-get install nix-bin)" >&2; exit 2; }
done
cargo build --release --quiet -p daemon --bin casnix-daemon --example query_path_info
casnix_daemon=$PWD/target/release/casnix-daemon
query=$PWD/target/release/examples/query_path_info

mkdir -p "$work"
work=$(cd "$work" && pwd)
store=$work/store
export NIX_STORE_DIR=$store
conf=$work/conf
mkdir -p "$conf"
printf 'substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nrequire-sigs = false\n' >"$conf/nix.conf"
export NIX_CONF_DIR=$conf HOME=$work/home XDG_CACHE_HOME=$work/home/cache
mkdir -p "$HOME"

# Inputs: the tree, and the closure in a store of its own (same logical store directory).
if [ ! -f "$work/.inputs-complete" ]; then
    rm -rf "$work/tree"
    python3 - "$work/tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(2)
for n in range(20000):
    d = f"{root}/d{n % 200}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{n}", "wb") as f:
        f.write(rng.randbytes(int(rng.expovariate(1 / 4000))))
PY
    chmod -R u+w "$work/src" 2>/dev/null || true
    rm -rf "$work/src"
    mkdir -p "$work/src/store" "$work/src/state" "$work/src/log"
    src_url="local?store=$store&real=$work/src/store&state=$work/src/state&log=$work/src/log"
    nix-instantiate --store "$src_url" --read-write-mode --eval -E '
      let
        link = i: if i == 0 then builtins.toFile "link-0" "the first link"
          else builtins.toFile "link-${toString i}" "${link (i - 1)}\n${builtins.concatStringsSep "" (builtins.genList (_: "link ${toString i} ") 100)}";
      in link 499' | tr -d '"' >"$work/closure-top"
    touch "$work/.inputs-complete"
fi
src_url="local?store=$store&real=$work/src/store&state=$work/src/state&log=$work/src/log"
top=$(cat "$work/closure-top")
closure_size=$(NIX_REMOTE=$src_url nix-store -qR "$top" | wc -l)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

daemon_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=
    fi
}
trap stop_daemon EXIT

# Runs the three measurements against one daemon: `run NAME COMMAND...`.
run() {
    local name=$1
    shift
    stop_daemon
    chmod -R u+w "$store" "$work/$name" 2>/dev/null || true
    local deleted=
    [ -e "$store" ] || [ -e "$work/$name" ] && deleted=1
    rm -rf "$store" "$work/$name"
    mkdir -p "$store" "$work/$name/state" "$work/$name/log"
    sync
    if [ -n "$deleted" ] && [ "$settle" != 0 ]; then
        # As in bench/store.sh: right after mass deletion, ext4 without a journal scans the
        # recently deleted inodes on every inode allocation, which slows whichever daemon
        # runs next (by up to 3x on the 20,000-file add).
        echo "bench: deleted the previous store; waiting ${settle} s for the file system" >&2
        sleep "$settle"
    fi
    local socket=$work/$name/socket
    NIX_STATE_DIR=$work/$name/state NIX_LOG_DIR=$work/$name/log NIX_DAEMON_SOCKET_PATH=$socket \
        NIX_REMOTE=local "$@" 2>"$work/$name/daemon.log" &
    daemon_pid=$!
    for _ in $(seq 200); do [ -S "$socket" ] && break; sleep 0.05; done
    export NIX_REMOTE=unix://$socket NIX_STATE_DIR=$work/$name/state

    local probe
    probe=$(nix-store --add "$work/closure-top")
    : >"$work/$name/qpi"
    for _ in 1 2 3; do
        "$query" "$socket" "$probe" "$count" | sed "s/^/$name: /" | tee -a "$work/$name/qpi"
    done

    local start
    start=$(now)
    nix-store --add "$work/tree" >/dev/null
    echo "$(elapsed "$start")" >"$work/$name/add"
    echo "$name: nix-store --add of 20,000 files: $(cat "$work/$name/add") s"

    start=$(now)
    NIX_REMOTE=$src_url nix copy --no-check-sigs --to "unix://$socket" "$top" 2>"$work/$name/copy.log" \
        || { cat "$work/$name/copy.log" >&2; exit 1; }
    echo "$(elapsed "$start")" >"$work/$name/copy"
    echo "$name: nix copy of a $closure_size-path closure: $(cat "$work/$name/copy") s"
    [ "$(nix-store -qR "$top" | wc -l)" = "$closure_size" ] || { echo "bench: $name lost paths" >&2; exit 1; }
    unset NIX_REMOTE NIX_STATE_DIR
    stop_daemon
}

run casnix "$casnix_daemon"
run nix nix-daemon

rate() { awk '$2 > best { best = $2 } END { print best }' "$work/$1/qpi"; }
awk -v c="$(rate casnix)" -v n="$(rate nix)" -v ac="$(cat "$work/casnix/add")" -v an="$(cat "$work/nix/add")" \
    -v cc="$(cat "$work/casnix/copy")" -v cn="$(cat "$work/nix/copy")" 'BEGIN {
    printf "QueryPathInfo rate, casnix/nix: %.2f (target >= 2)\n", c / n
    printf "nix-store --add time, casnix/nix: %.2f (target <= 0.5)\n", ac / an
    printf "nix copy time, casnix/nix: %.2f\n", cc / cn
}'
