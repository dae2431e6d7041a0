#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the other, from
# the seed corpora of fuzz/seed.py; prints executions and corpus size per target.
#
#   bash fuzz/run.sh 300                       # every target, 5 minutes each
#   bash fuzz/run.sh 60 push_bodies resource_key
#
# cargo-fuzz (`cargo install cargo-fuzz`) on the stable toolchain: RUSTC_BOOTSTRAP=1
# lets it pass its -Z flags. No sanitizer (safe Rust; it halves build and run time).
# A crash leaves its input in fuzz/artifacts/TARGET/ and stops with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
export RUSTC_BOOTSTRAP=1
target_dir=${FUZZ_TARGET_DIR:-$HOME/.cache/rootline/fuzz-target}
[ -d corpus ] || python3 seed.py
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build --sanitizer none --target-dir "$target_dir" "${targets[@]:0:0}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  status=0
  cargo fuzz run --sanitizer none --target-dir "$target_dir" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  files=$(find "corpus/$t" -type f | wc -l)
  echo "$t: ${secs}s, $execs executions, corpus $files files, exit $status"
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    exit "$status"
  fi
  rm -f "$log"
done
