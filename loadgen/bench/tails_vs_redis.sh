#!/usr/bin/env bash
# Our models' tails against redis-server's, the same open-loop load in the same sitting: the ruler
# that says how much of a tail is the machine's and how much the model's.
#   For each rate (default 60000 and a third of it), ROUNDS rounds; in each round every server in
#   turn (redis-server first) serves a fresh `switchyard load` at that rate: 32 connections, GET/SET
#   90/10 over 100,000 zipfian keys, 3 s after 1 s of warm-up. Servers on CPU 0 with one event-loop
#   thread, the load generator on CPU 1. Prints each run's p50, p99, p99.9 and max, the median of
#   the rounds, each model's p99.9 against redis-server's, and how many requests fell near the
#   delayed-ACK timeout (36-48 ms), the mark of a Nagle stall.
# Usage: loadgen/bench/tails_vs_redis.sh [RATE...]   (ROUNDS=3; MODELS="M M ...", default every
#        RESP model of `switchyard serve --list-models`, last first, the order of the recorded runs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RATES=("$@")
((${#RATES[@]})) || RATES=(60000 20000)
ROUNDS="${ROUNDS:-3}"
"$ROOT/switchyard" build --preset release
SY="$ROOT/build/release/cli/switchyard"
MODELS="${MODELS:-$("$SY" serve --list-models --format=tsv |
  awk -F'\t' '$2 == "resp" {print $1}' | tac)}"
WORK="$(mktemp -d)"
SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

if (($(nproc) >= 2)); then SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); else SERVER_CPU=(); CLIENT_CPU=(); fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts `name` on a free port (PORT); redis-server with persistence off, a model with one loop.
start_server() {
  local name="$1"
  PORT="$(free_port)"
  if [[ "$name" == redis ]]; then
    "${SERVER_CPU[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --loglevel warning >"$WORK/server.log" 2>&1 &
  else
    local workers=()
    [[ "$name" == prefork ]] && workers=(--workers 64)
    "${SERVER_CPU[@]}" "$SY" serve --model "$name" --port "$PORT" --metrics-port 0 --threads 1 \
      "${workers[@]}" --quiet >"$WORK/server.log" 2>&1 &
  fi
  SERVER_PID=$!
  for _ in $(seq 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "$name did not start: $(cat "$WORK/server.log")" >&2
  exit 1
}

# p50 p99 p99.9 max (seconds), requests near 40 ms, all requests, client-limited flag, of a result.
figures() {
  python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency"]
h = r["histogram"]
near = sum(int(b["count"]) for b in h.get("buckets", []) if 36e6 <= int(b["value_ns"]) <= 48e6)
print(lat["p50"], lat["p99"], lat["p999"], lat["max"], near, r["requests"],
      1 if r.get("client_limited") else 0)
EOF
}

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*'); servers pinned: ${SERVER_CPU[*]:-no}"
for rate in "${RATES[@]}"; do
  echo
  echo "== $rate/s: -c 32 --mix get:90,set:10 --keys 100000 --key-dist zipfian:0.99 -d 3s --warmup 1s"
  printf '%-16s %5s %10s %10s %10s %10s %14s  %s\n' server round p50 p99 p99.9 max \
    "near 40 ms" "client-limited"
  : >"$WORK/rows"
  for ((round = 1; round <= ROUNDS; round++)); do
    for name in redis $MODELS; do
      start_server "$name"
      "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" --threads 1 -c 32 --rate "$rate" \
        --mix get:90,set:10 --keys 100000 --key-dist zipfian:0.99 -d 3s --warmup 1s -q \
        --json "$WORK/run.json" >/dev/null
      stop_server
      read -r p50 p99 p999 max near requests limited < <(figures "$WORK/run.json")
      echo "$name $p50 $p99 $p999 $max $near $requests $limited" >>"$WORK/rows"
      awk -v n="$name" -v r="$round" -v a="$p50" -v b="$p99" -v c="$p999" -v d="$max" \
        -v e="$near" -v f="$requests" -v l="$limited" 'BEGIN {
          printf "%-16s %5d %8.0fus %8.0fus %8.0fus %8.2fms %7d of %-6d %s\n",
            n, r, a*1e6, b*1e6, c*1e6, d*1e3, e, f, (l ? "yes" : "") }'
    done
  done
  echo "-- medians of the $ROUNDS rounds; p99.9 against redis-server's"
  python3 - "$WORK/rows" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
ruler = statistics.median(r[2] for r in rows["redis"])
for name, runs in rows.items():
    p50, p99, p999, peak = (statistics.median(r[i] for r in runs) for i in range(4))
    near = sum(int(r[4]) for r in runs)
    print(f"{name:16s} p50 {p50*1e6:7.0f}us  p99 {p99*1e6:7.0f}us  p99.9 {p999*1e6:7.0f}us "
          f"({p999 / ruler:4.1f}x redis)  max {peak*1e3:6.2f}ms  near 40 ms: {near}")
EOF
done
