#!/usr/bin/env bash
# What per-request metrics cost: throughput of one model with them on and with
# --no-request-metrics (no clock reads, no counter or histogram updates per request), measured by
# redis-benchmark with deep pipelines so that the per-request work dominates, and the server's CPU
# time per request (from /proc/<pid>/stat), which a busy machine disturbs less than throughput.
# Rounds alternate on/off so that a noisy machine hits both alike; the medians are reported.
#
# Usage: servers/common/metrics_overhead_bench.sh [MODEL] [ROUNDS]   (default coroutine, 5)
# Builds the release binary first. The server runs on CPU 0 with one event loop, redis-benchmark on
# CPU 1 (when the machine has two).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
model="${1:-coroutine}"
rounds="${2:-5}"
requests="${REQUESTS:-2000000}"
# Only the server binary, optimised (the release preset), rebuilt if stale.
[[ -f "$ROOT/build/release/build.ninja" ]] || cmake --preset release -S "$ROOT" >/dev/null
cmake --build "$ROOT/build/release" --target switchyard >/dev/null
binary="$ROOT/build/release/cli/switchyard"
server_cpu=0 client_cpu=1
(($(nproc) < 2)) && client_cpu=0

run_once() {  # $@: extra server flags; prints "requests-per-second cpu-ns-per-request"
  local ready port pid rps ticks
  coproc SERVER { exec taskset -c "$server_cpu" "$binary" serve --model "$model" --threads 1 \
    --port 0 --metrics-port 0 --quiet "$@"; }
  pid=$SERVER_PID
  read -r ready <&"${SERVER[0]}"
  port=$(sed -E 's/.* port=([0-9]+) .*/\1/' <<<"$ready")
  rps=$(taskset -c "$client_cpu" redis-benchmark -p "$port" -t get -P 32 -c 16 -n "$requests" --csv \
    | awk -F'"' '/^"GET"/ {print $4}')
  # utime + stime, fields 14 and 15 (the command name holds no space), in clock ticks.
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$rps $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN {printf "%.0f", t / hz / n * 1e9}')"
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

on=() off=() on_cpu=() off_cpu=()
for ((i = 1; i <= rounds; i++)); do
  read -r rps cpu < <(run_once)
  on+=("$rps") on_cpu+=("$cpu")
  read -r rps cpu < <(run_once --no-request-metrics)
  off+=("$rps") off_cpu+=("$cpu")
  echo "round $i: metrics on ${on[-1]}/s ${on_cpu[-1]} ns CPU a request;" \
    "off ${off[-1]}/s ${off_cpu[-1]} ns" >&2
done
awk -v on="$(printf '%s\n' "${on[@]}" | median)" -v off="$(printf '%s\n' "${off[@]}" | median)" \
  -v on_cpu="$(printf '%s\n' "${on_cpu[@]}" | median)" \
  -v off_cpu="$(printf '%s\n' "${off_cpu[@]}" | median)" -v m="$model" -v n="$rounds" 'BEGIN {
  printf "%s, GET, pipeline 32, 16 connections, median of %d rounds:\n", m, n
  printf "  metrics on  %10.0f requests/s  %6.0f ns server CPU a request\n", on, on_cpu
  printf "  metrics off %10.0f requests/s  %6.0f ns server CPU a request\n", off, off_cpu
  printf "  per-request metrics: %+.1f%% throughput, %+.0f ns CPU a request (%+.1f%%)\n",
         (on - off) / off * 100, on_cpu - off_cpu, (on_cpu - off_cpu) / off_cpu * 100 }'
