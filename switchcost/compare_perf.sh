#!/usr/bin/env bash
# Sets switchyard's pinned pipe ping-pong beside `perf bench sched pipe`, on the same CPU, in one
# go, and says whether they agree within 25% (exit 0) or not (exit 1).
#
#   switchcost/compare_perf.sh              # CPU = first allowed, 5 perf runs of 200,000 loops
#   CPU=1 RUNS=7 LOOPS=500000 SWITCHYARD=build/release/cli/switchyard switchcost/compare_perf.sh
#
# perf prints usecs/op, where one op is a round trip: A writes, B reads and writes back, A reads.
# Pinned to one CPU that is two context switches, so perf's figure per switch is usecs/op / 2,
# which is how switchyard counts too (round trip / 2, the pipe calls included, nothing
# subtracted). perf runs processes by default and threads with -T; both are compared.
#
# perf times its loop by the wall clock; switchyard times a pinned pair by the CPU time of both
# sides, which leaves out what other processes ran on that CPU meanwhile. On a quiet machine the
# two are the same; on a busy one perf's wall figure grows with the load. So perf is measured both
# ways: its own figure, and the CPU time its two tasks used (bash's `time`: user + system of perf
# and its children) divided into the same switches. The verdict compares like with like (CPU
# time); the wall comparison is printed beside it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU="${CPU:-$(taskset -pc $$ | sed 's/.*: //; s/[-,].*//')}"
RUNS="${RUNS:-5}"
LOOPS="${LOOPS:-200000}"
SWITCHYARD="${SWITCHYARD:-$ROOT/switchyard}"  # or a built binary: build/release/cli/switchyard
TOLERANCE=0.25

command -v perf >/dev/null || { echo "compare_perf: perf not found (Debian package linux-perf)" >&2; exit 2; }
command -v jq >/dev/null || { echo "compare_perf: jq not found (Debian package jq)" >&2; exit 2; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Runs perf RUNS times ($1: "" for processes, -T for threads); sets PERF_WALL and PERF_CPU, the
# medians of ns per switch by perf's own clock and by the CPU time of its tasks.
run_perf() {
  local i out cpu walls=() cpus=()
  local TIMEFORMAT='%3U %3S'
  for ((i = 0; i < RUNS; i++)); do
    { time taskset -c "$CPU" perf bench sched pipe $1 -l "$LOOPS" >"$tmp/perf.out"; } 2>"$tmp/perf.time"
    walls+=("$(awk '/usecs\/op/ { print $1 * 1000 / 2 }' "$tmp/perf.out")")
    cpus+=("$(awk -v loops="$LOOPS" '{ print ($1 + $2) * 1e9 / (2 * loops) }' "$tmp/perf.time")")
  done
  PERF_WALL="$(printf '%s\n' "${walls[@]}" | median)"
  PERF_CPU="$(printf '%s\n' "${cpus[@]}" | median)"
}

tmp="$(mktemp -d /tmp/switchcost_compare_XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

echo "Pinned to CPU $CPU: perf bench sched pipe (median of $RUNS runs of $LOOPS loops) and switchyard switchcost"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run_perf ""
perf_process_wall="$PERF_WALL" perf_process_cpu="$PERF_CPU"
run_perf -T
perf_thread_wall="$PERF_WALL" perf_thread_cpu="$PERF_CPU"
# taskset gives switchyard the same single CPU: it pins both sides there itself.
taskset -c "$CPU" "$SWITCHYARD" switchcost --only switch --runs "$RUNS" --json "$tmp/switchcost.json" >/dev/null

ours() {  # ns per switch of unit $1, pinned pipe ping-pong
  jq -e --arg unit "$1" \
    '.results[] | select(.unit == $unit and .method == "pipe" and .pinned) | .value' "$tmp/switchcost.json"
}

verdict=0
printf '%-8s %11s %11s %11s %9s %9s  %s\n' unit "perf wall" "perf CPU" switchyard "vs wall" "vs CPU" "verdict (vs CPU)"
for unit in process thread; do
  if [[ $unit == process ]]; then wall="$perf_process_wall" cpu="$perf_process_cpu"; else wall="$perf_thread_wall" cpu="$perf_thread_cpu"; fi
  line="$(awk -v w="$wall" -v c="$cpu" -v s="$(ours "$unit")" -v t="$TOLERANCE" 'BEGIN {
    dw = (s - w) / w; dc = (s - c) / c
    printf "%8.0f ns %8.0f ns %8.0f ns %+8.1f%% %+8.1f%%  %s", w, c, s, 100 * dw, 100 * dc,
      (dc <= t && dc >= -t) ? "agree" : "DISAGREE" }')"
  printf '%-8s %s\n' "$unit" "$line"
  [[ "$line" == *DISAGREE* ]] && verdict=1
done
if ((verdict == 0)); then
  echo "Both agree with perf within 25%."
else
  echo "At least one figure differs from perf by more than 25%."
fi
exit "$verdict"
