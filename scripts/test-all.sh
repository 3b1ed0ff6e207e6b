#!/usr/bin/env bash
# Runs every test of casnix. Installs what the tests need first (Debian packages: the real Nix
# clients the differential tests compare against), so a fresh Debian machine passes as is.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nix-store >/dev/null 2>&1 || need_apt+=(nix-bin)
# casnix-daemon's tests: socket activation, and running a client as an unprivileged user.
command -v systemd-socket-activate >/dev/null 2>&1 || need_apt+=(systemd)
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
command -v useradd >/dev/null 2>&1 || need_apt+=(passwd)
# nixos-module/tests/eval.sh checks the VM test's Python script with python3.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The packaging tests (nixos-module/tests/eval.sh, contrib/systemd/test.sh) read JSON with jq.
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
# The sandbox crate: libseccomp to link against, a static busybox for the sandboxed builders.
[ -e /usr/include/seccomp.h ] || need_apt+=(libseccomp-dev)
[ -x /bin/busybox ] && file_is_static=$(LC_ALL=C ldd /bin/busybox 2>&1 | grep -c "not a dynamic") || file_is_static=0
[ "$file_is_static" -gt 0 ] || need_apt+=(busybox-static)
# The sandbox crate's `oci` backend runs builds with runc (Debian installs it in /usr/sbin).
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need_apt+=(runc)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test-all: missing ${need_apt[*]}; run as root (or install them) first" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Nix 2.26 client of the compatibility tests (a Debian trixie root) and their untrusted user.
if [ "$(id -u)" -eq 0 ]; then
    ./compat-tests/setup-trixie.sh
fi

# The daemon the compatibility tests check (unless CASNIX_DAEMON names another), built up front
# so the tests never build it themselves.
if [ -z "${CASNIX_DAEMON:-}" ]; then
    cargo build --release --locked -p daemon --bin casnix-daemon 2>&1
fi

# Release mode: the differential tests hash and pack hundreds of megabytes.
cargo test --release --workspace --locked 2>&1

# Packaging: the NixOS module evaluated with nixpkgs' lib.evalModules (Nix 2.8, Nix 2.26, and
# `casnix eval` once it exists), flake.nix and package.nix under Nix 2.26 (offline, nixpkgs
# replaced by nixpkgs.lib), and the contrib systemd units run under systemd-socket-activate.
./nixos-module/tests/eval.sh
./nixos-module/tests/flake.sh
./contrib/systemd/test.sh

# The evaluator against Nix's own language tests (NixOS/nix 2.26.3, tests/functional/lang) and
# nixpkgs' library tests (lib/tests/misc.nix, lib/tests/modules.sh), from local copies when at
# hand (see the scripts; they say "skipped" otherwise).
cargo build --release --locked -p cli --bin casnix 2>&1
./scripts/eval-nix-lang-tests.sh
./scripts/nixpkgs-lib-tests.sh

# Nix 2.26.3's own functional tests against casnix-daemon (when a NixOS/nix git directory with
# the tag is at hand; see scripts/nixft.sh): every test known to pass must still pass.
if [ "$(id -u)" -eq 0 ]; then
    ./scripts/nixft.sh
fi
