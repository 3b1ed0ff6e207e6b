# Shared by nixos-module/tests/*.sh (sourced): finding nixpkgs' lib, and running Nix 2.26.
#
# nixpkgs' lib comes from a git directory of nix-community/nixpkgs.lib: NIXPKGS_LIB_GIT, else
# ../.mirror/nix-community+nixpkgs.lib/repo beside the repository's parent (HEAD is checked out
# into a temporary directory); NIXPKGS_LIB names an unpacked checkout (the directory holding
# flake.nix and lib/) instead.

# Sets lib_root (the checkout) and lib_dir (its lib/), unpacking into $1 when needed; returns 1
# (after saying why) when there is none.
find_nixpkgs_lib() {
    local work=$1 label=$2
    if [ -n "${NIXPKGS_LIB:-}" ]; then
        lib_root=$(cd "$NIXPKGS_LIB" && pwd)
    else
        if [ -z "${NIXPKGS_LIB_GIT:-}" ]; then
            local candidate
            for candidate in ../.mirror/nix-community+nixpkgs.lib/repo ../../.mirror/nix-community+nixpkgs.lib/repo; do
                if git --git-dir="$candidate" rev-parse -q --verify HEAD >/dev/null 2>&1; then
                    NIXPKGS_LIB_GIT=$(cd "$candidate" && pwd)
                    break
                fi
            done
        fi
        if [ -z "${NIXPKGS_LIB_GIT:-}" ]; then
            echo "$label: no nixpkgs.lib git directory (set NIXPKGS_LIB_GIT or NIXPKGS_LIB); skipped" >&2
            return 1
        fi
        lib_root=$work/nixpkgs-lib
        mkdir "$lib_root"
        git --git-dir="$NIXPKGS_LIB_GIT" archive HEAD | tar -x -C "$lib_root"
        echo "$label: nixpkgs.lib $(git --git-dir="$NIXPKGS_LIB_GIT" rev-parse --short HEAD)"
    fi
    lib_dir=$lib_root/lib
}

# Where Nix 2.26 is: the Debian trixie root of the compatibility tests.
trixie=${CASNIX_TRIXIE_ROOT:-/opt/trixie}

# Whether Nix 2.26 can run here (root, and the trixie root has it).
have_nix_2_26() {
    [ "$(id -u)" -eq 0 ] && [ -x "$trixie/usr/bin/nix-instantiate" ]
}

# Runs a command in the trixie root, in a private mount namespace with /proc, /dev, /tmp, the
# repository ($repo) and the directories in $trixie_binds bound in at the same paths, in the
# current directory (paths without spaces).
trixie_binds=
run_trixie() {
    BINDS="$repo $trixie_binds" unshare -m sh -c '
        root=$1 dir=$2; shift 2
        for d in /proc /dev /tmp $BINDS; do mkdir -p "$root$d"; mount --rbind "$d" "$root$d"; done
        exec chroot "$root" sh -c "cd \"\$0\" && exec \"\$@\"" "$dir" "$@"' sh "$trixie" "$(pwd)" "$@"
}
