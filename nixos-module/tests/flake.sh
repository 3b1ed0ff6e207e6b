#!/usr/bin/env bash
# Checks flake.nix and package.nix with Nix 2.26 (the trixie root; as root), offline, with the
# flake's nixpkgs input replaced by nix-community/nixpkgs.lib (see common.sh): that has nixpkgs'
# lib but no packages, so what needs packages (building casnix, the dev shell, the VM test)
# cannot be evaluated here and is said so. Checks:
#   - `nix flake metadata`: the flake reads, its description, its one input (overridden);
#   - the outputs' names for every system (packages, devShells, checks), without evaluating
#     the derivations behind them;
#   - nixosModules.default through eval.nix's checks (the same as nixos-module/default.nix's);
#   - overlays.default: adds `casnix`, built from package.nix;
#   - `nix flake show`: runs until it needs nixpkgs' packages (NIXPKGS_FLAKE names a real
#     nixpkgs flake to override with instead, where one exists; show must then succeed);
#   - package.nix evaluated by package-eval.nix with nixpkgs' lib.fileset (which Nix 2.8
#     lacks builtins for): its source is exactly the workspace, its binaries are the three.
# Everything Nix writes goes to a store below a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
. nixos-module/tests/common.sh

if ! have_nix_2_26; then
    echo "skip flake: Nix 2.26 needs root and the trixie root at $trixie (compat-tests/setup-trixie.sh)"
    exit 0
fi
if ! git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "skip flake: $repo is not a git checkout (a flake's source is its tracked files)"
    exit 0
fi

# A worktree's git directory lives in the main checkout's: Nix must see both.
trixie_binds=$(cd "$(git -C "$repo" rev-parse --git-common-dir)" && pwd)

work=$(mktemp -d /tmp/casnix-flake.XXXXXX)
trap 'rm -rf "$work"' EXIT
find_nixpkgs_lib "$work" "flake" || exit 0

status=0
fail() {
    echo "FAIL flake: $*" >&2
    status=1
}

mkdir -p "$work/conf" "$work/home"
echo "substituters =" >"$work/conf/nix.conf"
flake=git+file://$repo
nixpkgs=${NIXPKGS_FLAKE:-path:$lib_root}
# Nix 2.26 on a store of its own (a chroot store below $work), with no binary caches.
nix226() {
    run_trixie env HOME="$work/home" XDG_CACHE_HOME="$work/home/cache" NIX_CONF_DIR="$work/conf" \
        nix --extra-experimental-features 'nix-command flakes' --store "$work/store" \
        "$@" --no-write-lock-file --override-input nixpkgs "$nixpkgs"
}

# Metadata.
if nix226 flake metadata --json "$flake" >"$work/metadata.json" 2>"$work/metadata.err"; then
    description=$(jq -r .description "$work/metadata.json")
    inputs=$(jq -c '.locks.nodes.root.inputs | keys' "$work/metadata.json")
    [ "$description" = "casnix: a drop-in replacement for nix-daemon on a content-addressed store" ] ||
        fail "flake metadata: description is '$description'"
    [ "$inputs" = '["nixpkgs"]' ] || fail "flake metadata: inputs are $inputs, expected [\"nixpkgs\"]"
    [ "$status" -ne 0 ] || echo "ok   flake metadata (nixpkgs overridden by $nixpkgs)"
else
    fail "nix flake metadata failed: $(cat "$work/metadata.err")"
fi

# The outputs' names, each system's attribute names without evaluating the derivations.
expected_outputs='{"checks":{"aarch64-linux":["nixos-module","package"],"x86_64-linux":["nixos-module","package"]},"devShells":{"aarch64-linux":["default"],"x86_64-linux":["default"]},"nixosModules":["default"],"overlays":["default"],"packages":{"aarch64-linux":["casnix","default"],"x86_64-linux":["casnix","default"]}}'
names='outputs: builtins.mapAttrs (kind: value:
    if builtins.elem kind [ "nixosModules" "overlays" ] then builtins.attrNames value
    else builtins.mapAttrs (system: builtins.attrNames) value)
  (removeAttrs outputs [ "_type" "inputs" "outputs" "sourceInfo" "outPath" ])'
if nix226 eval --json "$flake#." --apply "$names" >"$work/outputs.json" 2>"$work/outputs.err"; then
    got=$(jq -cS . "$work/outputs.json")
    [ "$got" = "$expected_outputs" ] && echo "ok   flake outputs: $got" ||
        fail "flake outputs are $got, expected $expected_outputs"
else
    fail "listing the flake's outputs failed: $(cat "$work/outputs.err")"
fi

# nixosModules.default, through the module checks of eval.nix.
module_checks="module: let result = import $repo/nixos-module/tests/eval.nix { lib = import $lib_dir; inherit module; };
  in { inherit (result) failures checked; }"
if nix226 eval --impure --json "$flake#nixosModules.default" --apply "$module_checks" >"$work/module.json" 2>"$work/module.err"; then
    if [ "$(jq '.failures | length' "$work/module.json")" = 0 ]; then
        echo "ok   flake nixosModules.default: $(jq .checked "$work/module.json") checks of eval.nix"
    else
        fail "nixosModules.default: $(jq -r '.failures | join("; ")' "$work/module.json")"
    fi
else
    fail "evaluating nixosModules.default failed: $(cat "$work/module.err")"
fi

# overlays.default.
overlay_check='overlay: let added = overlay { callPackage = path: args: { inherit path args; }; } { };
  in { names = builtins.attrNames added; file = baseNameOf added.casnix.path; args = added.casnix.args; }'
if nix226 eval --json "$flake#overlays.default" --apply "$overlay_check" >"$work/overlay.json" 2>"$work/overlay.err"; then
    got=$(jq -cS . "$work/overlay.json")
    [ "$got" = '{"args":{},"file":"package.nix","names":["casnix"]}' ] && echo "ok   flake overlays.default: adds casnix from package.nix" ||
        fail "overlays.default gives $got"
else
    fail "evaluating overlays.default failed: $(cat "$work/overlay.err")"
fi

# nix flake show: with nixpkgs.lib it must get as far as the first derivation, which needs
# nixpkgs' packages; with a real nixpkgs it must succeed.
if nix226 flake show "$flake" >"$work/show.out" 2>"$work/show.err"; then
    echo "ok   nix flake show:"
    sed 's/^/    /' "$work/show.out"
elif [ -z "${NIXPKGS_FLAKE:-}" ] && grep -q "attribute 'legacyPackages' missing" "$work/show.err"; then
    echo "ok   nix flake show: reads the flake and stops at the first derivation (nixpkgs.lib has no packages; not checked here)"
else
    fail "nix flake show failed: $(cat "$work/show.err")"
fi

# package.nix, with the real lib.fileset, on a store of its own.
cat >"$work/package-eval.nix" <<EOF
import $repo/nixos-module/tests/package-eval.nix { lib = import $lib_dir; }
EOF
if run_trixie env NIX_STORE_DIR="$work/pkg/nix/store" NIX_STATE_DIR="$work/pkg/nix/var/nix" NIX_LOG_DIR="$work/pkg/nix/var/log/nix" \
    NIX_CONF_DIR="$work/conf" NIX_REMOTE=local HOME="$work/home" \
    nix-instantiate --read-write-mode --eval --strict --json "$work/package-eval.nix" >"$work/package.json" 2>"$work/package.err"; then
    if [ "$(jq '.failures | length' "$work/package.json")" = 0 ]; then
        echo "ok   package.nix: $(jq .checked "$work/package.json") checks (source, version, binaries, libseccomp)"
    else
        fail "$(jq -r '.failures | join("; ")' "$work/package.json")"
    fi
else
    fail "evaluating package.nix failed: $(cat "$work/package.err")"
fi

exit "$status"
