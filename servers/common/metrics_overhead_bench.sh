#!/usr/bin/env bash
# What per-request metrics cost: throughput of one model with them on and with
# --no-request-metrics (no clock reads, no counter or histogram updates per request), measured by
# redis-benchmark with deep pipelines so that the per-request work dominates. Rounds alternate
# on/off so that a noisy machine hits both alike; the medians are reported.
#
# Usage: servers/common/metrics_overhead_bench.sh [MODEL] [ROUNDS]   (default coroutine, 5)
# Builds the release preset first. The server runs on CPU 0 with one event loop, redis-benchmark on
# CPU 1 (when the machine has two).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
model="${1:-coroutine}"
rounds="${2:-5}"
requests="${REQUESTS:-2000000}"
"$ROOT/switchyard" build >/dev/null 2>&1 || "$ROOT/switchyard" build
binary="$ROOT/build/release/cli/switchyard"
server_cpu=0 client_cpu=1
(($(nproc) < 2)) && client_cpu=0

run_once() {  # $@: extra server flags; prints requests per second
  local ready port pid rps
  coproc SERVER { exec taskset -c "$server_cpu" "$binary" serve --model "$model" --threads 1 \
    --port 0 --metrics-port 0 --quiet "$@"; }
  pid=$SERVER_PID
  read -r ready <&"${SERVER[0]}"
  port=$(sed -E 's/.* port=([0-9]+) .*/\1/' <<<"$ready")
  rps=$(taskset -c "$client_cpu" redis-benchmark -p "$port" -t get -P 32 -c 16 -n "$requests" --csv \
    | awk -F'"' '/^"GET"/ {print $4}')
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$rps"
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

on=() off=()
for ((i = 1; i <= rounds; i++)); do
  on+=("$(run_once)")
  off+=("$(run_once --no-request-metrics)")
  echo "round $i: metrics on ${on[-1]}/s, off ${off[-1]}/s" >&2
done
on_median=$(printf '%s\n' "${on[@]}" | median)
off_median=$(printf '%s\n' "${off[@]}" | median)
awk -v on="$on_median" -v off="$off_median" -v m="$model" -v n="$rounds" 'BEGIN {
  printf "%s, GET, pipeline 32, 16 connections, median of %d rounds:\n", m, n
  printf "  metrics on  %10.0f requests/s\n  metrics off %10.0f requests/s\n", on, off
  printf "  per-request metrics cost %.1f%% of throughput (%.0f ns a request)\n",
         (off - on) / off * 100, (1 / on - 1 / off) * 1e9 }'
