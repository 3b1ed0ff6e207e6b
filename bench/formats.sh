#!/usr/bin/env bash
# NAR-pack-and-SHA-256 throughput: `casnix hash path --type sha256 TREE` against
# `nix-store --dump TREE | sha256sum`, on the same 1 GiB tree, in the same run.
# Prints MiB/s for both and the ratio (target: casnix at least 1.5 times Nix's throughput).
#
# Usage: bench/formats.sh [TREE_DIR] [RUNS]   (default /tmp/casnix-bench-tree, 5 runs, best taken)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${1:-/tmp/casnix-bench-tree}
runs=${2:-5}

command -v nix-store >/dev/null || { echo "bench: nix-store missing (apt-get install nix-bin)" >&2; exit 2; }
cargo build --release --quiet --bin casnix
casnix=target/release/casnix

# A 1 GiB tree: 4 large files, ~4,000 medium and small files across nested directories,
# symlinks and executables. Contents are random so nothing compresses or dedups.
if [ ! -f "$tree/.complete" ]; then
    rm -rf "$tree"
    mkdir -p "$tree"
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
total = 0
target = 1 << 30
for i in range(4):
    with open(f"{root}/large{i}.bin", "wb") as f:
        f.write(os.urandom(128 << 20)); total += 128 << 20
n = 0
while total < target:
    d = f"{root}/d{n % 40}/e{n % 7}"
    os.makedirs(d, exist_ok=True)
    size = rng.choice([0, 100, 4096, 65536, 300000, 1 << 20])
    size = min(size, target - total)
    p = f"{d}/f{n}"
    with open(p, "wb") as f:
        f.write(os.urandom(size))
    if n % 9 == 0:
        os.chmod(p, 0o755)
    if n % 50 == 0:
        os.symlink(f"f{n}", f"{d}/link{n}")
    total += size; n += 1
PY
    touch "$tree/.complete"
fi
bytes=$(nix-store --dump "$tree" | wc -c)

best() { # runs a command $runs times, prints the fastest wall time in seconds
    local best=999999 t0 t1 t
    for _ in $(seq "$runs"); do
        t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        best=$(echo "if ($t < $best) $t else $best" | bc -l)
    done
    echo "$best"
}
nix_run() { nix-store --dump "$tree" | sha256sum; }
ours_run() { "$casnix" hash path --type sha256 "$tree"; }

# Both must agree before either is timed.
[ "$(nix_run | cut -d' ' -f1)" = "$(ours_run)" ] || { echo "bench: hashes differ" >&2; exit 1; }

t_nix=$(best nix_run)
t_ours=$(best ours_run)
mib=$(echo "$bytes / 1048576" | bc -l)
printf 'NAR size:                      %.0f MiB (best of %d runs each, warm page cache)\n' "$mib" "$runs"
printf 'nix-store --dump | sha256sum:  %8.1f MiB/s  (%.3f s)\n' "$(echo "$mib / $t_nix" | bc -l)" "$t_nix"
printf 'casnix hash path --type sha256: %7.1f MiB/s  (%.3f s)\n' "$(echo "$mib / $t_ours" | bc -l)" "$t_ours"
printf 'ratio (casnix / nix):          %8.2fx  (target >= 1.5x)\n' "$(echo "$t_nix / $t_ours" | bc -l)"
