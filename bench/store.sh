#!/usr/bin/env bash
# The local store's adds against Nix 2.8's, in one run, on isolated roots and the same inputs:
#   1. `casnix store add --store local` (durable: fsync, rename, one transaction) against
#      `NIX_REMOTE=local nix-store --add`, for a 1 GiB tree of ~20,000 files and a single 1 GiB
#      file: wall and user+sys seconds of each, and the ratios casnix/Nix;
#   2. ten versions of a 200 MiB tree (~4,000 files), each differing from the one before in 1%
#      of its files, added to both stores: disk use (`du -s --block-size=1` over the store and
#      state directories together, hardlinks counted once; casnix's castore pool is in its state
#      directory) and the ratio casnix/Nix.
#
# Usage: bench/store.sh [WORK_DIR] [ROUNDS]   (default /tmp/casnix-bench-store, 1 round)
# Inputs are generated once (the tree and file with castore.sh's generator and seed). Each round
# adds into fresh roots and deletes nothing while timing: after mass deletion, ext4 without a
# journal scans for recently deleted inodes (deleted less than 60 s ago, 300 s while their inode
# table is dirty) on every inode allocation, which can triple the time of an add. So the roots
# of earlier runs are deleted at the start, synced, and followed by one wait of $SETTLE seconds
# (default 70). Other processes deleting files on the same file system skew the figures the same
# way; the machine may be shared: compare user+sys as well.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/casnix-bench-store}
rounds=${2:-1}
settle=${SETTLE:-70}

command -v nix-store >/dev/null || { echo "bench: nix-store missing (apt-get install nix-bin)" >&2; exit 2; }
cargo build --release --quiet -p cli --bin casnix
casnix=$PWD/target/release/casnix

mkdir -p "$work"
if [ ! -f "$work/.inputs-complete" ]; then
    python3 - "$work" <<'PY'
import os, random, shutil, sys
work = sys.argv[1]

def tree(root, target, rng, mean):
    total, n = 0, 0
    while total < target:
        d = f"{root}/d{n % 100}/e{n % 20}"
        os.makedirs(d, exist_ok=True)
        size = min(int(rng.expovariate(1 / mean)), target - total)
        p = f"{d}/f{n}"
        with open(p, "wb") as f:
            f.write(os.urandom(size))
        if n % 9 == 0:
            os.chmod(p, 0o755)
        if n % 50 == 0:
            os.symlink(f"f{n}", f"{d}/link{n}")
        total += size
        n += 1

# castore.sh's inputs: a 1 GiB tree of ~20,000 files and a single 1 GiB file.
tree(f"{work}/tree", 1 << 30, random.Random(1), 53000)
os.makedirs(f"{work}/big", exist_ok=True)
with open(f"{work}/big/file.bin", "wb") as f:
    for _ in range(1024):
        f.write(os.urandom(1 << 20))

# Ten versions of a 200 MiB tree; each rewrites 1% of the previous version's files.
rng = random.Random(2)
tree(f"{work}/versions/v0", 200 << 20, rng, 53000)
for v in range(1, 10):
    prev, cur = f"{work}/versions/v{v - 1}", f"{work}/versions/v{v}"
    shutil.copytree(prev, cur, symlinks=True, copy_function=os.link)
    files = sorted(os.path.join(d, n) for d, _, ns in os.walk(cur) for n in ns
                   if not os.path.islink(os.path.join(d, n)))
    for p in rng.sample(files, len(files) // 100):
        mode = os.stat(p).st_mode & 0o777
        size = os.path.getsize(p)
        os.unlink(p)  # the previous version keeps its inode
        with open(p, "wb") as f:
            f.write(os.urandom(size))
        os.chmod(p, mode)
PY
    touch "$work/.inputs-complete"
fi

# Old roots are deleted here, before anything is timed.
if compgen -G "$work/run-*" >/dev/null; then
    chmod -R u+w "$work"/run-* 2>/dev/null || true
    rm -rf "$work"/run-*
    sync
    echo "bench: deleted earlier roots; waiting ${settle} s for the file system" >&2
    sleep "$settle"
fi

# in_root ROOT COMMAND…: runs the command with Nix's variables pointing into ROOT.
in_root() {
    local root=$1
    shift
    NIX_STORE_DIR=$root/store NIX_STATE_DIR=$root/state NIX_LOG_DIR=$root/log NIX_CONF_DIR=$root/conf \
        NIX_REMOTE=local "$@"
}
new_root() {
    mkdir -p "$1/conf"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\n' >"$1/conf/nix.conf"
}
# timed LABEL ROOT COMMAND…: prints "wall user sys" of the command into $work/times/LABEL.
timed() {
    local label=$1 root=$2
    shift 2
    in_root "$root" /usr/bin/time -o "$work/times/$label" -f "%e %U %S" "$@" >/dev/null
}
report() { # report WHAT CASNIX_LABEL NIX_LABEL
    python3 - "$1" "$work/times/$2" "$work/times/$3" <<'PY'
import sys
what, ours, nix = sys.argv[1], *(list(map(float, open(p).read().split()[-3:])) for p in sys.argv[2:])
def row(name, t):
    print(f"  {name:7} {t[0]:7.2f} s wall {t[1] + t[2]:7.2f} s user+sys ({t[1]:.2f} user, {t[2]:.2f} sys)")
print(what)
row("casnix", ours)
row("nix", nix)
print(f"  ratio casnix/nix: wall {ours[0] / nix[0]:.2f}, user+sys {(ours[1] + ours[2]) / (nix[1] + nix[2]):.2f}")
PY
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(nix-store --version)"
for round in $(seq 1 "$rounds"); do
    run=$work/run-$round
    mkdir -p "$work/times"
    for input in tree big; do
        new_root "$run/$input-casnix"
        new_root "$run/$input-nix"
        in_root "$run/$input-casnix" "$casnix" store ping >/dev/null # creates the store and database
        in_root "$run/$input-nix" nix-store --init
        find "$work/$input" -type f -exec cat {} + >/dev/null # both start from the page cache
        sync
        timed "$input-casnix" "$run/$input-casnix" "$casnix" store add --store local "$work/$input"
        sync
        timed "$input-nix" "$run/$input-nix" nix-store --add "$work/$input"
        sync # Nix leaves its writes in the page cache: write them out before the next add
        report "round $round, $input ($(du -sh --apparent-size "$work/$input" | cut -f1)):" "$input-casnix" "$input-nix"
    done

    new_root "$run/versions-casnix"
    new_root "$run/versions-nix"
    in_root "$run/versions-casnix" "$casnix" store ping >/dev/null
    in_root "$run/versions-nix" nix-store --init
    for v in $(seq 0 9); do
        find "$work/versions/v$v" -type f -exec cat {} + >/dev/null
        timed "v$v-casnix" "$run/versions-casnix" "$casnix" store add --store local --name versions "$work/versions/v$v"
        timed "v$v-nix" "$run/versions-nix" nix-store --add "$work/versions/v$v"
        sync
    done
    python3 - "$work/times" <<'PY'
import sys
d = sys.argv[1]
tot = {k: sum(sum(map(float, open(f"{d}/v{v}-{k}").read().split()[-3:][:1])) for v in range(10)) for k in ("casnix", "nix")}
print(f"round versions (10 × 200 MiB, 1% changed each): add time total casnix {tot['casnix']:.2f} s, nix {tot['nix']:.2f} s wall")
PY
    ours=$(du -s --block-size=1 -c "$run/versions-casnix/store" "$run/versions-casnix/state" | tail -1 | cut -f1)
    nix=$(du -s --block-size=1 -c "$run/versions-nix/store" "$run/versions-nix/state" | tail -1 | cut -f1)
    python3 -c "
o, n = $ours, $nix
print(f'  disk use: casnix {o / 2**20:.1f} MiB (store, state, castore pool), nix {n / 2**20:.1f} MiB (store, state)')
print(f'  ratio casnix/nix: {o / n:.3f}')"
done
