#!/usr/bin/env bash
# Builds the libFuzzer targets with the `fuzz` preset and runs each for SECONDS (default 30) from
# the committed seed corpus. New inputs go to a scratch corpus in build/fuzz/, so the committed one
# stays small; a crash leaves its input in build/fuzz/ and fails the run.
# A longer run: tests/fuzz/run.sh 3600
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_EACH="${1:-30}"
cd "$ROOT"
[[ -f build/fuzz/build.ninja ]] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2
cd build/fuzz
for target in resp_parser_fuzz commands_fuzz; do
  mkdir -p "corpus-$target"
  echo "fuzzing $target for ${SECONDS_EACH}s"
  status=0
  "./tests/fuzz/$target" -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
    "corpus-$target" "$ROOT/tests/fuzz/corpus" >"$target.log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)|ERROR|SUMMARY|Test unit written" \
    "$target.log" || true
  if ((status != 0)); then
    tail -n 40 "$target.log"
    exit "$status"
  fi
done
