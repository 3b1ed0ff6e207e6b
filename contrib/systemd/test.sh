#!/usr/bin/env bash
# Runs casnix-daemon as contrib/systemd's units describe it, under systemd-socket-activate, on an
# isolated root, and talks to it with Nix 2.8's clients through the activated socket.
#
# The command line comes from the units themselves: ListenStream and SocketMode from
# casnix-daemon.socket; ExecStart (its program is this workspace's casnix-daemon, or
# CASNIX_DAEMON; its arguments are kept) and Environment from casnix-daemon.service. Every
# absolute path the units name (/nix/…, /etc/casnix) is moved below a temporary root, and the
# configuration directory gets contrib/systemd/nix.conf as is, next to a Nix nix.conf in
# ROOT/etc/nix that it must include. Checks:
#   - the units agree with each other and with Nix's layout (socket path, NIX_CONF_DIR and
#     AssertPathExists, the daemon's program), and `systemd-analyze verify` finds nothing;
#   - the daemon takes the socket from systemd (its log says so), `nix store ping` shows
#     casnix-daemon's version, and a Nix client stores a
#     file through it (`nix-store --add`), reads it back (`nix path-info --json`, `nix-store
#     --dump`, same NAR as the file's) and verifies it (`nix-store --verify-path`);
#   - a derivation is built through the socket in the sandbox (`sandbox = true` in Nix's file,
#     `sandbox-backend = native` in contrib's), its builder a static busybox;
#   - the included Nix configuration is read: `allowed-users = root` there turns an
#     unprivileged client (nobody) away with the daemon's refusal; after `allowed-users = *`
#     and the unit's ExecReload signal (SIGHUP), nobody's query succeeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
units=contrib/systemd

fail() {
    echo "FAIL contrib/systemd: $*" >&2
    exit 1
}

for tool in systemd-socket-activate nix-store nix setpriv; do
    command -v "$tool" >/dev/null || fail "'$tool' is not installed (scripts/test-all.sh installs it)"
done

# The values of KEY in a unit file (one per line; comments and other sections' keys with other
# names ignored).
unit_values() {
    sed -n "s/^$2=//p" "$1"
}
one_value() {
    local values
    values=$(unit_values "$1" "$2")
    [ "$(printf '%s\n' "$values" | grep -c .)" -eq 1 ] || fail "$1 must have exactly one $2= (has: ${values:-none})"
    printf '%s\n' "$values"
}

listen=$(one_value "$units/casnix-daemon.socket" ListenStream)
socket_mode=$(one_value "$units/casnix-daemon.socket" SocketMode)
exec_start=$(one_value "$units/casnix-daemon.service" ExecStart)
assert_path=$(one_value "$units/casnix-daemon.service" AssertPathExists)
[ "$listen" = /nix/var/nix/daemon-socket/socket ] || fail "ListenStream is '$listen', not Nix's socket path"

# ExecStart: a program (systemd's prefixes such as '-' or '@' are not used here) and arguments.
read -r -a exec_words <<<"$exec_start"
program=${exec_words[0]}
case "$program" in
    /*/casnix-daemon) ;;
    *) fail "ExecStart runs '$program', not an absolute path to casnix-daemon" ;;
esac
exec_args=("${exec_words[@]:1}")

# Environment: NAME=VALUE words (no quoting in these units).
declare -A unit_env=()
while read -r line; do
    for pair in $line; do
        unit_env[${pair%%=*}]=${pair#*=}
    done
done < <(unit_values "$units/casnix-daemon.service" Environment)
conf_dir=${unit_env[NIX_CONF_DIR]:-}
[ -n "$conf_dir" ] || fail "casnix-daemon.service sets no NIX_CONF_DIR"
[ "$assert_path" = "$conf_dir/nix.conf" ] || fail "AssertPathExists is '$assert_path', but the daemon reads '$conf_dir/nix.conf'"

if [ -n "${CASNIX_DAEMON:-}" ] && [ -x "${CASNIX_DAEMON}" ]; then
    daemon=$CASNIX_DAEMON
else
    cargo build --release --locked -p daemon --bin casnix-daemon 2>&1
    daemon=$(pwd)/target/release/casnix-daemon
fi

root=$(mktemp -d /tmp/casnix-contrib-systemd.XXXXXX)
activator=
cleanup() {
    if [ -n "$activator" ]; then
        kill "$activator" 2>/dev/null || true
        wait "$activator" 2>/dev/null || true
    fi
    rm -rf "$root"
}
trap cleanup EXIT
# The socket must be reachable by the unprivileged client.
chmod 755 "$root"

# systemd's own check of the units (unknown keys, bad values): copies whose ExecStart runs the
# daemon under test (systemd-analyze wants the program to exist); any message is a failure.
if command -v systemd-analyze >/dev/null; then
    mkdir "$root/units"
    cp "$units/casnix-daemon.socket" "$root/units/"
    sed "s|^ExecStart=$program|ExecStart=$daemon|" "$units/casnix-daemon.service" >"$root/units/casnix-daemon.service"
    if ! verify=$(systemd-analyze verify "$root/units/casnix-daemon.socket" "$root/units/casnix-daemon.service" 2>&1) || [ -n "$verify" ]; then
        fail "systemd-analyze verify: $verify"
    fi
fi

# The machine's paths, below the root.
store_dir=$root/nix/store
state_dir=$root/nix/var/nix
sock=$root$listen
mkdir -p "$store_dir" "$state_dir" "$root/nix/var/log/nix" "$root$conf_dir" "$root/etc/nix" "$(dirname "$sock")"
cp "$units/nix.conf" "$root$conf_dir/nix.conf"
# Nix's own configuration, as a host's /etc/nix/nix.conf: casnix must read it through the include.
cat >"$root/etc/nix/nix.conf" <<'EOF'
substituters =
build-users-group =
sandbox = true
trusted-users = root
allowed-users = root
EOF

activate_args=(-l "$sock")
for name in "${!unit_env[@]}"; do
    value=${unit_env[$name]}
    [ "$name" = NIX_CONF_DIR ] && value=$root$value
    activate_args+=(-E "$name=$value")
done
activate_args+=(-E "NIX_STORE_DIR=$store_dir" -E "NIX_STATE_DIR=$state_dir" -E "NIX_LOG_DIR=$root/nix/var/log/nix" -E NO_COLOR=1)
systemd-socket-activate "${activate_args[@]}" "$daemon" "${exec_args[@]}" 2>"$root/daemon.log" &
activator=$!
for _ in $(seq 100); do
    [ -S "$sock" ] && break
    sleep 0.1
done
[ -S "$sock" ] || fail "systemd-socket-activate made no socket at $sock: $(cat "$root/daemon.log")"
chmod "$socket_mode" "$sock"

# Nix's clients, talking to the daemon through the socket.
client() {
    env NIX_REMOTE=daemon NIX_DAEMON_SOCKET_PATH="$sock" NIX_STORE_DIR="$store_dir" NIX_STATE_DIR="$state_dir" \
        NIX_CONF_DIR="$root/etc/nix" NIX_LOG_DIR="$root/nix/var/log/nix" "$@"
}
show_log() {
    echo "  daemon log:" >&2
    sed 's/^/    /' "$root/daemon.log" >&2
}

printf 'hello from the contrib units\n' >"$root/input.txt"
path=$(client nix-store --add "$root/input.txt" 2>"$root/client.err") || { cat "$root/client.err" >&2; show_log; fail "nix-store --add through the socket failed"; }
case "$path" in
    "$store_dir"/*-input.txt) ;;
    *) show_log; fail "nix-store --add printed '$path'" ;;
esac
grep -q "using the socket passed by systemd" "$root/daemon.log" || { show_log; fail "the daemon did not take the socket from systemd"; }
[ "$(cat "$path")" = "hello from the contrib units" ] || fail "$path does not hold the file's contents"

ping=$(client nix --extra-experimental-features nix-command store ping 2>&1) || { show_log; fail "nix store ping failed: $ping"; }
case "$ping" in
    *"Version: "*casnix*) ;;
    *) fail "nix store ping does not show casnix-daemon's version: $ping" ;;
esac
info=$(client nix --extra-experimental-features nix-command path-info --json "$path") || { show_log; fail "nix path-info failed"; }
expected_hash=$(nix --extra-experimental-features nix-command hash path --type sha256 "$root/input.txt")
echo "$info" | jq -e --arg p "$path" --arg h "$expected_hash" \
    '.[0].path == $p and .[0].narHash == $h' >/dev/null || fail "nix path-info says $info; expected narHash $expected_hash"
cmp -s <(client nix-store --dump "$path") <(nix-store --dump "$root/input.txt") || fail "nix-store --dump through the socket differs from the file's NAR"
client nix-store --verify-path "$path" || fail "nix-store --verify-path $path failed"

if [ "$(id -u)" -ne 0 ]; then
    echo "ok   contrib/systemd: casnix-daemon under systemd-socket-activate served Nix 2.8's clients (allowed-users and reload: skipped, not root)"
    exit 0
fi

# A build through the socket, sandboxed by the backend contrib's nix.conf chooses (native): a
# derivation whose builder is Debian's static busybox, added to the store by the evaluation.
if [ -x /bin/busybox ] && ! LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; then
    mkdir -p "$root/expr/busybox-dir/bin"
    cp /bin/busybox "$root/expr/busybox-dir/bin/busybox"
    cat >"$root/expr/build.nix" <<'EOF'
derivation {
  name = "built-through-the-contrib-units";
  system = builtins.currentSystem;
  builder = "${./busybox-dir}/bin/busybox";
  args = [ "sh" "-c" "echo built in $NIX_BUILD_TOP > $out" ];
}
EOF
    built=$(client nix-build --no-out-link "$root/expr/build.nix" 2>"$root/build.err") ||
        { cat "$root/build.err" >&2; show_log; fail "nix-build through the socket failed"; }
    # In a sandbox the build directory is /build (outside, a directory under /tmp).
    [ "$(cat "$built")" = "built in /build" ] || fail "$built holds '$(cat "$built")', not a sandboxed build's '/build'"
    grep -q "sandbox-backend = native" "$root$conf_dir/nix.conf" || fail "contrib's nix.conf no longer chooses the native backend"
else
    echo "skip contrib/systemd build: no static /bin/busybox (busybox-static)"
fi

# allowed-users from the included /etc/nix/nix.conf: nobody is turned away. Nix 2.8's client
# only sees the connection close, so the refusal is read from the daemon's log.
mkdir "$root/home-nobody"
chown nobody "$root/home-nobody"
as_nobody() {
    client env HOME="$root/home-nobody" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
if answer=$(as_nobody nix-store --query --hash "$path" 2>&1); then
    fail "nobody queried the store although the included nix.conf allows only root: $answer"
fi
grep -q "user 'nobody' is not allowed to connect to the Nix daemon" "$root/daemon.log" ||
    { show_log; fail "nobody's client failed ($answer), but the daemon did not refuse nobody"; }

# The unit's ExecReload (SIGHUP; the activator has become the daemon) rereads the included file.
[ "$(unit_values "$units/casnix-daemon.service" ExecReload)" = '/bin/kill -HUP $MAINPID' ] || fail "ExecReload is not SIGHUP"
sed -i 's/^allowed-users = root$/allowed-users = */' "$root/etc/nix/nix.conf"
kill -HUP "$activator"
for _ in $(seq 100); do
    grep -q "reloaded nix.conf" "$root/daemon.log" && break
    sleep 0.1
done
grep -q "reloaded nix.conf" "$root/daemon.log" || { show_log; fail "the daemon did not reload nix.conf on SIGHUP"; }
answer=$(as_nobody nix-store --query --hash "$path" 2>&1) || { show_log; fail "nobody is still refused after allowed-users = * and a reload: $answer"; }
[ "$answer" = "sha256:$(nix-hash --type sha256 --base32 "$root/input.txt")" ] ||
    fail "nobody's nix-store --query --hash printed '$answer'"

echo "ok   contrib/systemd: casnix-daemon under systemd-socket-activate ($listen, $exec_start) served Nix 2.8's clients"
