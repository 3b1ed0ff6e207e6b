#!/usr/bin/env bash
# Adding trees to the store: castore's ingest + materialisation (`castore_add`, with its NAR
# hash) against `nix-store --add` on an isolated local store, on the same inputs in the same run.
# Inputs: a 1 GiB tree of ~20,000 files (sizes exponential around 53 KB, executables, symlinks)
# and a single 1 GiB file. Prints wall, user and sys seconds of each.
#
# Usage: bench/castore.sh [WORK_DIR] [unsynced]   (default /tmp/casnix-bench-castore)
# Deleting many files makes ext4 slow to allocate inodes for about 30 s, so each round waits 40 s
# after cleaning up. On a shared machine, compare user+sys as well as wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/casnix-bench-castore}
mode=${2:-}

command -v nix-store >/dev/null || { echo "bench: nix-store missing (apt-get install nix-bin)" >&2; exit 2; }
cargo build --release --quiet -p castore --example castore_add
add=$PWD/target/release/examples/castore_add

mkdir -p "$work"
if [ ! -f "$work/.inputs-complete" ]; then
    python3 - "$work" <<'PY'
import os, random, sys
work = sys.argv[1]
rng = random.Random(1)
root = f"{work}/tree"
total, n, target = 0, 0, 1 << 30
while total < target:
    d = f"{root}/d{n % 100}/e{n % 20}"
    os.makedirs(d, exist_ok=True)
    size = min(int(rng.expovariate(1 / 53000)), target - total)
    p = f"{d}/f{n}"
    with open(p, "wb") as f:
        f.write(os.urandom(size))
    if n % 9 == 0:
        os.chmod(p, 0o755)
    if n % 50 == 0:
        os.symlink(f"f{n}", f"{d}/link{n}")
    total += size
    n += 1
os.makedirs(f"{work}/big", exist_ok=True)
with open(f"{work}/big/file.bin", "wb") as f:
    for _ in range(1024):
        f.write(os.urandom(1 << 20))
PY
    touch "$work/.inputs-complete"
fi

export NIX_STORE_DIR=$work/nix/store NIX_STATE_DIR=$work/nix/state NIX_LOG_DIR=$work/nix/log
export NIX_CONF_DIR=$work/nix/conf NIX_REMOTE=local
for input in tree big; do
    chmod -R u+w "$work/nix" "$work/ours" 2>/dev/null || true
    rm -rf "$work/nix" "$work/ours"
    mkdir -p "$work/nix/conf" "$work/ours"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\n' > "$work/nix/conf/nix.conf"
    sync
    sleep 40
    find "$work/$input" -type f -exec cat {} + >/dev/null # both start from the page cache
    /usr/bin/time -f "$input castore: %e s wall, %U s user, %S s sys" "$add" "$work/$input" "$work/ours" $mode >/dev/null
    sync
    /usr/bin/time -f "$input nix:     %e s wall, %U s user, %S s sys" nix-store --add "$work/$input" >/dev/null
done
