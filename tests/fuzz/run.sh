#!/usr/bin/env bash
# Builds the libFuzzer targets with the `fuzz` preset and runs each from the committed seed corpus,
# for SECONDS (default 30) or for exactly N executions (--runs N). New inputs go to a scratch corpus
# in build/fuzz/, so the committed one stays small; a crash leaves its input in build/fuzz/ and
# fails the run. Targets may be named to run only those (one per core, say, in two shells).
#   tests/fuzz/run.sh 3600                                # an hour each
#   tests/fuzz/run.sh --runs 10000000 commands_fuzz       # ten million inputs of one target
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
budget=(-max_total_time="${1:-30}")
if [[ ${1:-} == --runs ]]; then
  budget=(-runs="${2:?--runs needs a count}")
  shift 2
elif (($# > 0)); then
  shift
fi
targets=("$@")
((${#targets[@]} > 0)) || targets=(resp_parser_fuzz commands_fuzz)
cd "$ROOT"
[[ -f build/fuzz/build.ninja ]] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2
cd build/fuzz
for target in "${targets[@]}"; do
  mkdir -p "corpus-$target"
  echo "fuzzing $target (${budget[*]})"
  dict=()
  [[ $target == commands_fuzz ]] && dict=(-dict="$ROOT/tests/fuzz/commands.dict")
  status=0
  "./tests/fuzz/$target" "${budget[@]}" -max_len=4096 -print_final_stats=1 "${dict[@]}" \
    "corpus-$target" "$ROOT/tests/fuzz/corpus" >"$target.log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)|ERROR|SUMMARY|Test unit written" \
    "$target.log" || true
  if ((status != 0)); then
    tail -n 40 "$target.log"
    exit "$status"
  fi
done
