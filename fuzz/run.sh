#!/usr/bin/env bash
# Runs one fuzz target on the stable toolchain: ./run.sh TARGET SECONDS [extra libFuzzer flags]
# The corpus lives in corpus/TARGET (ignored by git) and is seeded from seeds/<seed dir>.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: run.sh TARGET SECONDS [libFuzzer flags]}
seconds=${2:?usage: run.sh TARGET SECONDS [libFuzzer flags]}
shift 2
case $target in
  nar_reader | nar_restore) seeds=nar_reader dict=nar.dict ;;
  aterm_parser) seeds=aterm_parser dict=aterm.dict ;;
  narinfo_parser) seeds=narinfo_parser dict=narinfo.dict ;;
  *) seeds=$target dict= ;;
esac
mkdir -p "corpus/$target"
if [ -d "seeds/$seeds" ]; then cp -n "seeds/$seeds"/* "corpus/$target/"; fi
flags=(-max_total_time="$seconds" -print_final_stats=1)
if [ -n "$dict" ]; then flags+=(-dict="dicts/$dict"); fi
# Debug assertions add overflow checks. Sanitizers need a nightly compiler; RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags to stable.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "$target" -s none --debug-assertions "corpus/$target" -- "${flags[@]}" "$@"
