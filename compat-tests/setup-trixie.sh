#!/usr/bin/env bash
# Makes the Nix 2.26 client of the compatibility tests available: a Debian trixie root (default
# /opt/trixie, or $CASNIX_TRIXIE_ROOT) with Debian's nix-bin in it, and the untrusted test user
# (nixcompat) on the host and in that root with the same ids. Does nothing that is already done.
# Needs root (debootstrap, chroot, useradd).
set -euo pipefail

root="${CASNIX_TRIXIE_ROOT:-/opt/trixie}"
user=nixcompat

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-trixie: run as root" >&2
    exit 2
fi

if [ ! -x "$root/usr/bin/nix-store" ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq debootstrap >/dev/null
    fi
    if [ ! -x "$root/usr/bin/apt-get" ]; then
        mkdir -p "$root"
        debootstrap --variant=minbase trixie "$root"
    fi
    # chroot's own /proc and /dev for the maintainer scripts, private to this mount namespace.
    unshare -m sh -c '
        mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" &&
        chroot "$1" env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -qq && apt-get install -y -qq nix-bin >/dev/null"
    ' sh "$root"
fi

if ! getent passwd "$user" >/dev/null; then
    useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"
fi
uid=$(id -u "$user")
gid=$(id -g "$user")
if ! grep -q "^$user:" "$root/etc/passwd"; then
    chroot "$root" groupadd --non-unique --gid "$gid" "$user" 2>/dev/null || true
    chroot "$root" useradd --non-unique --uid "$uid" --gid "$gid" --no-create-home --shell /usr/sbin/nologin "$user"
fi

unshare -m sh -c 'mount -t proc proc "$1/proc" && chroot "$1" nix-store --version' sh "$root" >/dev/null 2>&1 || {
    echo "setup-trixie: nix-store does not run in $root" >&2
    exit 1
}
