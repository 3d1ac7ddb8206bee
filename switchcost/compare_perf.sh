#!/usr/bin/env bash
# Sets switchyard's pinned pipe ping-pong beside `perf bench sched pipe`, on the same CPU, in one
# go, and says whether they agree within 25% (exit 0) or not (exit 1).
#
#   switchcost/compare_perf.sh              # CPU = first allowed, 5 perf runs of 200,000 loops
#   CPU=1 RUNS=7 LOOPS=500000 switchcost/compare_perf.sh
#
# perf prints usecs/op, where one op is a round trip: A writes, B reads and writes back, A reads.
# Pinned to one CPU that is two context switches, so perf's figure per switch is usecs/op / 2,
# which is how switchyard counts too (round trip / 2, the pipe calls included, nothing
# subtracted). perf runs processes by default and threads with -T; both are compared.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU="${CPU:-$(taskset -pc $$ | sed 's/.*: //; s/[-,].*//')}"
RUNS="${RUNS:-5}"
LOOPS="${LOOPS:-200000}"
TOLERANCE=0.25
SWITCHYARD="${SWITCHYARD:-$ROOT/switchyard}"  # or a built binary, e.g. build/release/cli/switchyard

command -v perf >/dev/null || { echo "compare_perf: perf not found (Debian package linux-perf)" >&2; exit 2; }
command -v jq >/dev/null || { echo "compare_perf: jq not found (Debian package jq)" >&2; exit 2; }

# Median of perf's ns per switch over RUNS runs; $1 is "" for processes or -T for threads.
perf_ns_per_switch() {
  local i
  for ((i = 0; i < RUNS; i++)); do
    taskset -c "$CPU" perf bench sched pipe $1 -l "$LOOPS" | awk '/usecs\/op/ { print $1 * 1000 / 2 }'
  done | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

json="$(mktemp /tmp/switchcost_compare_XXXXXX.json)"
trap 'rm -f "$json"' EXIT

echo "Pinned to CPU $CPU: perf bench sched pipe (median of $RUNS runs of $LOOPS loops) and switchyard switchcost"
perf_process="$(perf_ns_per_switch "")"
perf_thread="$(perf_ns_per_switch -T)"
# taskset gives switchyard the same single CPU: it pins both sides there itself.
taskset -c "$CPU" "$SWITCHYARD" switchcost --only switch --runs "$RUNS" --json "$json" >/dev/null

ours() {  # ns per switch of unit $1, pinned pipe ping-pong
  jq -e --arg unit "$1" \
    '.results[] | select(.unit == $unit and .method == "pipe" and .pinned) | .value' "$json"
}

verdict=0
printf '%-9s %16s %20s %9s  %s\n' unit "perf ns/switch" "switchyard ns/switch" difference verdict
for unit in process thread; do
  theirs="$([[ $unit == process ]] && echo "$perf_process" || echo "$perf_thread")"
  mine="$(ours "$unit")"
  line="$(awk -v p="$theirs" -v s="$mine" -v t="$TOLERANCE" 'BEGIN {
    d = (s - p) / p; ok = (d <= t && d >= -t)
    printf "%16.0f %20.0f %+8.1f%%  %s", p, s, 100 * d, ok ? "agree" : "DISAGREE" }')"
  printf '%-9s %s\n' "$unit" "$line"
  [[ "$line" == *DISAGREE* ]] && verdict=1
done
if ((verdict == 0)); then
  echo "Both agree with perf within 25%."
else
  echo "At least one figure differs from perf by more than 25%."
fi
exit "$verdict"
