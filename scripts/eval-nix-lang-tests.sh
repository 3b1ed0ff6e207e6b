#!/usr/bin/env bash
# Runs Nix 2.26.3's language tests (tests/functional/lang) through `casnix eval` and prints the
# pass counts. The tests come from a local copy of NixOS/nix (not committed): $NIX_LANG_DIR, or
# extracted from the mirror beside the repository ($NIXFT_NIX_GIT or ../.mirror/NixOS+nix/repo).
# Usage: scripts/eval-nix-lang-tests.sh [CASNIX_BINARY]   (failures are listed in $OUT/failures)
# Exit status 1 when an eval-okay case does not give Nix's output or an eval-fail case does not
# fail (error texts that differ from Nix's are counted, not failures).
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
casnix="${1:-$here/target/release/casnix}"
casnix="$(cd "$(dirname "$casnix")" && pwd)/$(basename "$casnix")"
out="${OUT:-/tmp/casnix-nix-lang}"
rm -rf "$out"; mkdir -p "$out"
if [[ -n "${NIX_LANG_DIR:-}" ]]; then
    root="$NIX_LANG_DIR"
else
    git="${NIXFT_NIX_GIT:-$here/../.mirror/NixOS+nix/repo}"
    [[ -d "$git" ]] || git="$(dirname "$here")/../.mirror/NixOS+nix/repo"
    if [[ ! -d "$git" ]]; then echo "skipped: no NixOS/nix mirror (set NIX_LANG_DIR or NIXFT_NIX_GIT)"; exit 0; fi
    mkdir -p "$out/src"
    git --git-dir="$git" archive 2.26.3 tests/functional/lang | tar -x -C "$out/src"
    root="$out/src/tests/functional"
fi
cd "$root" || exit 1
export TEST_VAR=foo NIX_STORE_DIR=/nix/store
okay_pass=0; okay_total=0; fail_pass=0; fail_total=0; fail_text=0
: > "$out/failures"
for f in lang/eval-okay-*.nix; do
    i=$(basename "$f" .nix)
    [[ -e "lang/$i.exp-disabled" ]] && continue
    okay_total=$((okay_total + 1))
    if [[ -e "lang/$i.exp.xml" ]]; then
        timeout 60 "$casnix" eval --xml --no-location --strict "$f" > "$out/$i.out" 2> "$out/$i.err"
        rc=$?; exp="lang/$i.exp.xml"
    else
        flags=()
        [[ -e "lang/$i.flags" ]] && read -r -a flags < "lang/$i.flags"
        NIX_PATH=lang/dir3:lang/dir4 HOME=/fake-home timeout 60 "$casnix" eval "${flags[@]}" --strict "$f" > "$out/$i.out" 2> "$out/$i.err"
        rc=$?; exp="lang/$i.exp"
        sed -i "s!$(pwd)!/pwd!g" "$out/$i.out"
    fi
    if [[ $rc -eq 0 ]] && cmp -s "$out/$i.out" "$exp"; then
        okay_pass=$((okay_pass + 1))
    else
        echo "okay $i (rc=$rc)" >> "$out/failures"
    fi
done
for f in lang/eval-fail-*.nix; do
    i=$(basename "$f" .nix)
    fail_total=$((fail_total + 1))
    if [[ -e "lang/$i.flags" ]]; then
        read -r -a flags < <(sed -e 's/#.*//' < "lang/$i.flags")
    else
        flags=(--eval --strict --show-trace)
    fi
    timeout 60 "$casnix" eval "${flags[@]}" "$f" > "$out/$i.out" 2> "$out/$i.err"
    rc=$?
    if [[ $rc -eq 1 ]]; then
        fail_pass=$((fail_pass + 1))
        # Nix's .err.exp is its whole error output (paths under /pwd).
        sed -i "s!$(pwd)!/pwd!g" "$out/$i.err"
        if cmp -s "$out/$i.err" "lang/$i.err.exp"; then
            fail_text=$((fail_text + 1))
        else
            echo "text $i" >> "$out/failures"
        fi
    else
        echo "fail $i (rc=$rc)" >> "$out/failures"
    fi
done
echo "eval-okay: $okay_pass/$okay_total passed"
echo "eval-fail: $fail_pass/$fail_total failed as expected ($fail_text with Nix's error text exactly; the others are listed as 'text NAME' in $out/failures)"
[[ $okay_pass -eq $okay_total && $fail_pass -eq $fail_total ]]
