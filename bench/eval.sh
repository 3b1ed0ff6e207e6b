#!/usr/bin/env bash
# casnix's evaluator against Nix 2.26's, in the same run, alternating, on two workloads:
#   misc     nixpkgs.lib's lib/tests/misc.nix (the library's unit tests; evaluates to `[ ]`);
#   modules  a module-system evaluation: `lib.evalModules` over 40 generated modules declaring
#            1,000 options (bool, int, str, enum, nullOr, listOf, attrsOf, attrsOf submodule,
#            submodule) with defaults, and 40 modules defining them through mkIf, mkMerge,
#            mkDefault, mkForce, mkOrder and references to each other's config; the whole
#            config is forced through builtins.toJSON.
# Each run is `casnix eval --strict FILE` against `nix-instantiate --eval --strict FILE` (Nix
# 2.26.3, chrooted in the trixie root); the script checks that both print the same output. It
# measures wall seconds and peak RSS (GNU time's %e and %M), keeps the best of ROUNDS rounds of
# each, and prints the ratios casnix/nix. Targets: casnix at most 0.5x Nix's wall time and at
# most 0.5x its peak memory on both workloads.
#
# Usage: bench/eval.sh [WORK_DIR] [ROUNDS]   (default /tmp/casnix-bench-eval, 5 rounds)
# Environment: CASNIX (a casnix binary to measure instead of building target/release/casnix),
# NIXPKGS_LIB_GIT (a git directory of nix-community/nixpkgs.lib, else
# ../.mirror/nix-community+nixpkgs.lib/repo beside the repository's parent), CASNIX_TRIXIE_ROOT
# (default /opt/trixie: compat-tests/setup-trixie.sh makes it). Needs root (chroot, mount
# namespace) and GNU time (apt-get install time). WORK_DIR must be under /tmp or /work: the
# chrooted Nix sees those at the same paths.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/casnix-bench-eval}
rounds=${2:-5}
trixie=${CASNIX_TRIXIE_ROOT:-/opt/trixie}

case $work in /tmp/* | /work/*) ;; *) echo "bench: WORK_DIR must be under /tmp or /work" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (Nix 2.26 runs chrooted)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: GNU time missing (apt-get install time)" >&2; exit 2; }
[ -x "$trixie/usr/bin/nix-instantiate" ] || { echo "bench: no Nix 2.26 in $trixie (compat-tests/setup-trixie.sh)" >&2; exit 2; }
if [ -z "${NIXPKGS_LIB_GIT:-}" ]; then
    for candidate in ../.mirror/nix-community+nixpkgs.lib/repo ../../.mirror/nix-community+nixpkgs.lib/repo; do
        if git --git-dir="$candidate" rev-parse -q --verify HEAD >/dev/null 2>&1; then
            NIXPKGS_LIB_GIT=$(cd "$candidate" && pwd)
            break
        fi
    done
fi
if [ -z "${NIXPKGS_LIB_GIT:-}" ]; then
    echo "bench: no nixpkgs.lib git directory (set NIXPKGS_LIB_GIT); skipped" >&2
    exit 0
fi
if [ -n "${CASNIX:-}" ]; then
    casnix=$(realpath "$CASNIX")
else
    cargo build --release --quiet -p cli --bin casnix
    casnix=$PWD/target/release/casnix
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "$work/lib"
mkdir -p "$work/lib"
git --git-dir="$NIXPKGS_LIB_GIT" archive HEAD | tar -x -C "$work/lib"
lib_rev=$(git --git-dir="$NIXPKGS_LIB_GIT" rev-parse --short HEAD)

# The module workload: 40 declaring modules of 25 options each, 40 defining modules.
python3 - "$work/modules.nix" "$work/lib/lib" <<'PY'
import sys
out, lib = sys.argv[1], sys.argv[2]
n = 40
decl, defs = [], []
for i in range(n):
    decl.append(f"""  ({{ lib, config, ... }}: with lib; {{
    options.services.s{i} = {{
      enable = mkEnableOption "service {i}";
      port = mkOption {{ type = types.port; default = {8000 + i}; }};
      name = mkOption {{ type = types.str; default = "s{i}"; }};
      mode = mkOption {{ type = types.enum [ "fast" "slow" "auto" ]; default = "auto"; }};
      tags = mkOption {{ type = types.listOf types.str; default = [ ]; }};
      extra = mkOption {{ type = types.attrsOf types.int; default = {{ }}; }};
      limit = mkOption {{ type = types.nullOr types.ints.unsigned; default = null; }};
      weight = mkOption {{ type = types.float; default = {i}.5; }};
      users = mkOption {{
        default = {{ }};
        type = types.attrsOf (types.submodule ({{ name, ... }}: {{
          options = {{
            uid = mkOption {{ type = types.int; }};
            shell = mkOption {{ type = types.str; default = "/bin/sh"; }};
            groups = mkOption {{ type = types.listOf types.str; default = [ ]; }};
            home = mkOption {{ type = types.str; default = "/home/${{name}}"; }};
          }};
        }}));
      }};
      settings = mkOption {{
        default = {{ }};
        type = types.submodule {{
          options = {{
""")
    for k in range(15):
        kind = k % 5
        if kind == 0:
            decl.append(f'            k{k} = mkOption {{ type = types.int; default = {k}; }};\n')
        elif kind == 1:
            decl.append(f'            k{k} = mkOption {{ type = types.str; default = "v{k}"; }};\n')
        elif kind == 2:
            decl.append(f'            k{k} = mkOption {{ type = types.bool; default = false; }};\n')
        elif kind == 3:
            decl.append(f'            k{k} = mkOption {{ type = types.listOf types.int; default = [ {k} ]; }};\n')
        else:
            decl.append(f'            k{k} = mkOption {{ type = types.either types.int types.str; default = "e{k}"; }};\n')
    decl.append("""          };
        };
      };
    };
  })
""")
    nxt = (i + 1) % n
    defs.append(f"""  ({{ lib, config, ... }}: with lib; let cfg = config.services.s{i}; in {{
    config = mkMerge [
      {{
        services.s{i} = {{
          enable = mkDefault {"true" if i % 2 == 0 else "false"};
          name = mkDefault "svc-${{toString config.services.s{nxt}.port}}";
          tags = mkMerge [ [ "t{i}" ] (mkIf cfg.enable [ "on" ]) (mkOrder 2000 [ "last" ]) ];
          extra = {{ a = {i}; b = mkDefault {i * 2}; }};
          users.alice = {{ uid = {1000 + i}; }};
          users.bob = {{ uid = {2000 + i}; groups = [ "wheel" "s{i}" ]; shell = mkForce "/bin/bash"; }};
          settings.k0 = mkForce {i};
          settings.k3 = [ {i} {i + 1} ];
          settings.k4 = {i};
        }};
      }}
      (mkIf cfg.enable {{
        services.s{i}.port = {9000 + i};
        services.s{i}.mode = "fast";
        services.s{i}.limit = {i * 10};
        services.s{i}.settings.k1 = "enabled-${{cfg.name}}";
        services.s{nxt}.extra.from{i} = cfg.port;
      }})
    ];
  }})
""")
with open(out, "w") as f:
    f.write(f"""# Generated by bench/eval.sh: {n} modules declaring {n * 25} options, {n} defining them.
let
  lib = import {lib};
  result = lib.evalModules {{
    modules = [
""")
    f.write("".join(decl))
    f.write("".join(defs))
    f.write("""    ];
  };
in
builtins.toJSON (removeAttrs result.config [ "_module" ])
""")
PY

# Nix 2.26's nix-instantiate, chrooted in the trixie root (the mounts cost a few milliseconds).
nix_eval=(unshare -m sh -c 'for d in proc dev tmp work; do mkdir -p "$0/$d"; mount --rbind "/$d" "$0/$d"; done; exec chroot "$0" nix-instantiate --eval --strict "$1"' "$trixie")
casnix_eval=("$casnix" eval --strict)

# `measure NAME FILE COMMAND...`: one timed run of COMMAND FILE; appends "seconds kilobytes" to
# $work/NAME.times and leaves its output in $work/NAME.out.
measure() {
    local name=$1 file=$2
    shift 2
    /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" "$file" >"$work/$name.out" 2>"$work/$name.err" || {
        echo "bench: $name failed on $file:" >&2
        tail -5 "$work/$name.err" >&2
        exit 1
    }
    cat "$work/time.out" >>"$work/$name.times"
}

declare -A files=([misc]="$work/lib/lib/tests/misc.nix" [modules]="$work/modules.nix")
echo "nixpkgs.lib $lib_rev; $rounds rounds each, alternating; load: $(uptime | sed 's/.*load/load/')"
printf '%-8s %-7s %9s %10s\n' workload eval seconds peak-MiB
for workload in misc modules; do
    file=${files[$workload]}
    rm -f "$work"/*-"$workload".times
    for _ in $(seq "$rounds"); do
        measure "nix-$workload" "$file" "${nix_eval[@]}"
        measure "casnix-$workload" "$file" "${casnix_eval[@]}"
    done
    if ! cmp -s "$work/nix-$workload.out" "$work/casnix-$workload.out"; then
        echo "bench: casnix and Nix print different results for $workload:" >&2
        diff <(head -c 2000 "$work/nix-$workload.out") <(head -c 2000 "$work/casnix-$workload.out") >&2 || true
        exit 1
    fi
    for who in nix casnix; do
        best_s=$(awk '{print $1}' "$work/$who-$workload.times" | sort -g | head -1)
        best_kb=$(awk '{print $2}' "$work/$who-$workload.times" | sort -g | head -1)
        printf '%-8s %-7s %9s %10.1f\n' "$workload" "$who" "$best_s" "$(awk -v k="$best_kb" 'BEGIN { print k / 1024 }')"
        eval "${who}_s=\$best_s ${who}_kb=\$best_kb"
    done
    awk -v cs="$casnix_s" -v ns="$nix_s" -v ck="$casnix_kb" -v nk="$nix_kb" -v w="$workload" 'BEGIN {
        printf "%-8s casnix/nix: time %.2fx, memory %.2fx (targets: at most 0.50x each)\n", w, cs / ns, ck / nk
    }'
done
echo "output identical for both workloads ($(wc -c <"$work/nix-misc.out") and $(wc -c <"$work/nix-modules.out") bytes)"
