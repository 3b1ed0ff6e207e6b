#!/usr/bin/env bash
# Builds through casnix-daemon against builds through Nix 2.26's nix-daemon, in the same run:
# a wide graph of 202 trivial derivations (one shared input, 200 leaves depending on it, a top
# depending on every leaf), each built by Debian's static busybox (`sh -c`, a line or two of
# shell: the builders do next to nothing, so the figures are the daemons' per-build overhead).
#
# Each round realises the graph (`nix-store --realise` of the top, Nix 2.8's client on the host)
# in a fresh store of each daemon, with the same max-jobs for both, and times it (wall seconds;
# the store is created and the derivations instantiated through the daemon before the clock
# starts). Runs:
#   nix             Nix 2.26's nix-daemon (from the trixie root), sandbox = false;
#   casnix          casnix-daemon, sandbox = $CASNIX_SANDBOX (default true);
#   casnix-nosandbox  casnix-daemon, sandbox = false (only when CASNIX_SANDBOX is not false).
# Prints each run's best time over the rounds and the ratios casnix/nix (target: at most 1.2 for
# casnix with its sandbox against Nix without). When casnix-daemon answers a build with its "no sandbox backend yet"
# warning, its sandbox = true figure is unsandboxed, and the script says so.
#
# Sandbox set-up time per build: (casnix's best time with the sandbox - its best time without) /
# the number of derivations built. The builders do almost nothing, so the difference is what the
# sandbox adds to each build (namespaces, mounts, chroot, tear-down), whatever casnix-daemon logs.
# Per build, the native backend forks a process from its zygote (no exec), which creates the
# namespaces (a network namespace is most of that), makes the root's skeleton in a tmpfs, mounts
# the inputs, loads the precompiled seccomp filter and execs the builder; with RUST_LOG=sandbox=debug
# casnix-daemon logs each build's prepare/run/teardown milliseconds. On an ext4 without a journal
# (this machine's), creating inodes soon after many were deleted is slow (the allocator skips
# recently deleted ones): each round deletes the previous round's store, so expect noise.
#
# Usage: bench/builds.sh [WORK_DIR] [ROUNDS]   (default /tmp/casnix-bench-builds, 3 rounds)
# Environment: MAX_JOBS (default 1), CASNIX_SANDBOX (default true), CASNIX_TRIXIE_ROOT (default
# /opt/trixie: compat-tests/setup-trixie.sh makes it). Needs root (chroot, mount namespace) and
# /bin/busybox (apt-get install busybox-static). WORK_DIR must be under /tmp: the Nix 2.26 daemon
# runs chrooted with /tmp bound in, and sees the store at the same path.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/casnix-bench-builds}
rounds=${2:-3}
max_jobs=${MAX_JOBS:-1}
casnix_sandbox=${CASNIX_SANDBOX:-true}
trixie=${CASNIX_TRIXIE_ROOT:-/opt/trixie}
leaves=200
derivations=$((leaves + 2))

case $work in /tmp/*) ;; *) echo "bench: WORK_DIR must be under /tmp" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (the Nix 2.26 daemon runs chrooted)" >&2; exit 2; }
[ -x /bin/busybox ] || { echo "bench: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 2; }
[ -x "$trixie/usr/bin/nix-daemon" ] || { echo "bench: no Nix 2.26 in $trixie (compat-tests/setup-trixie.sh)" >&2; exit 2; }
for tool in nix-store nix-instantiate; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (apt-get install nix-bin)" >&2; exit 2; }
done
cargo build --release --quiet -p daemon --bin casnix-daemon
casnix_daemon=$PWD/target/release/casnix-daemon

mkdir -p "$work"
work=$(cd "$work" && pwd)
store=$work/store

# The graph: busybox keeps its file name as <hash>-busybox-dir/bin/busybox (Debian's busybox
# does not run as <hash>-busybox).
mkdir -p "$work/expr/busybox-dir/bin"
cp /bin/busybox "$work/expr/busybox-dir/bin/busybox"
cat >"$work/expr/graph.nix" <<EOF
let
  busybox = "\${./busybox-dir}/bin/busybox";
  mk = name: script: attrs: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
  } // attrs);
  shared = mk "shared" "echo shared > \$out" { };
  leaf = i: mk "leaf-\${toString i}" "read x < \$shared; echo \"\$x \${toString i}\" > \$out" { inherit shared; };
in mk "top" "for l in \$leaves; do read x < \$l; echo \"\$x\"; done > \$out" {
  leaves = builtins.genList leaf $leaves;
}
EOF

now() { date +%s.%N; }

daemon_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM -- "-$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=
    fi
}
trap stop_daemon EXIT

# `round NAME KIND SANDBOX`: one timed realisation in a fresh store; appends the seconds to
# $work/NAME/times and the client's stderr to $work/NAME/client.log.
round() {
    local name=$1 kind=$2 sandbox=$3
    local dir=$work/$name
    stop_daemon
    chmod -R u+w "$store" 2>/dev/null || true
    rm -rf "$store" "$dir/state" "$dir/log" "$dir/socket" "$dir/build"
    mkdir -p "$store" "$dir/state" "$dir/log" "$dir/socket" "$dir/conf" "$dir/build"
    printf 'substituters =\nsandbox = %s\nbuild-users-group =\ntrusted-users = root\nmax-jobs = %s\nexperimental-features = nix-command\n' \
        "$sandbox" "$max_jobs" >"$dir/conf/nix.conf"
    local vars=(PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$dir" TMPDIR="$dir/build" NIX_STORE_DIR="$store"
        NIX_STATE_DIR="$dir/state" NIX_LOG_DIR="$dir/log" NIX_CONF_DIR="$dir/conf"
        NIX_DAEMON_SOCKET_PATH="$dir/socket/socket" NIX_REMOTE=local)
    # Its own process group (setsid), so stopping it stops its workers too.
    case $kind in
        casnix) setsid env -i "${vars[@]}" "$casnix_daemon" 2>>"$dir/daemon.log" & ;;
        nix) setsid unshare -m sh -c 'root=$1; shift; mount --rbind /proc "$root/proc" && mount --rbind /dev "$root/dev" &&
                mount --bind /tmp "$root/tmp" && exec chroot "$root" "$@"' sh "$trixie" \
                env -i "${vars[@]}" nix-daemon 2>>"$dir/daemon.log" & ;;
    esac
    daemon_pid=$!
    for _ in $(seq 400); do [ -S "$dir/socket/socket" ] && break; sleep 0.05; done
    [ -S "$dir/socket/socket" ] || { echo "bench: $name's daemon did not start:" >&2; tail "$dir/daemon.log" >&2; exit 1; }
    local client=(env -i PATH=/usr/bin:/bin HOME="$dir" NIX_STORE_DIR="$store" NIX_STATE_DIR="$dir/state"
        NIX_LOG_DIR="$dir/log" NIX_CONF_DIR="$dir/conf" NIX_REMOTE="unix://$dir/socket/socket")
    local drv
    drv=$("${client[@]}" nix-instantiate "$work/expr/graph.nix" 2>/dev/null)
    sync
    local start end
    start=$(now)
    "${client[@]}" nix-store --realise --max-jobs "$max_jobs" "$drv" >"$dir/out" 2>"$dir/client.log" \
        || { echo "bench: $name's build failed:" >&2; tail -n 20 "$dir/client.log" >&2; exit 1; }
    end=$(now)
    stop_daemon
    local built
    built=$(grep -c "^building '" "$dir/client.log" || true)
    [ "$built" -eq "$derivations" ] || { echo "bench: $name built $built derivations, not $derivations" >&2; exit 1; }
    if grep -q "no sandbox backend yet" "$dir/client.log"; then touch "$dir/unsandboxed"; fi
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' >>"$dir/times"
    echo "$name: $(tail -n 1 "$dir/times") s"
}

runs=(nix casnix)
[ "$casnix_sandbox" = false ] || runs+=(casnix-nosandbox)
for name in "${runs[@]}"; do
    rm -rf "${work:?}/$name"
    mkdir -p "$work/$name"
done
for _ in $(seq "$rounds"); do
    round nix nix false
    round casnix casnix "$casnix_sandbox"
    [ "$casnix_sandbox" = false ] || round casnix-nosandbox casnix false
done

best() { sort -n "$work/$1/times" | head -n 1; }
unsandboxed_note=
if [ -e "$work/casnix/unsandboxed" ]; then
    unsandboxed_note=" (unsandboxed: casnix-daemon answered 'no sandbox backend yet')"
fi
echo "builds: $derivations derivations, max-jobs $max_jobs, best of $rounds rounds"
echo "nix 2.26 (sandbox = false): $(best nix) s"
echo "casnix (sandbox = $casnix_sandbox): $(best casnix) s$unsandboxed_note"
awk -v c="$(best casnix)" -v n="$(best nix)" -v s="$casnix_sandbox" 'BEGIN {
    printf "build time, casnix (sandbox = %s)/nix: %.2f (target <= 1.2)\n", s, c / n
}'
if [ "$casnix_sandbox" != false ]; then
    echo "casnix (sandbox = false): $(best casnix-nosandbox) s"
    awk -v c="$(best casnix-nosandbox)" -v n="$(best nix)" 'BEGIN {
        printf "build time, casnix (sandbox = false)/nix: %.2f\n", c / n
    }'
    if [ -n "$unsandboxed_note" ]; then
        echo "sandbox set-up per build: not measured (casnix-daemon has no sandbox backend yet)"
    else
        awk -v a="$(best casnix)" -v b="$(best casnix-nosandbox)" -v d="$derivations" 'BEGIN {
            printf "sandbox set-up per build (sandboxed - unsandboxed, per derivation): %.1f ms\n", (a - b) * 1000 / d
        }'
    fi
fi
