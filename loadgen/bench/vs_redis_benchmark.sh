#!/usr/bin/env bash
# Holds `switchyard load` against redis-benchmark, on a private redis-server, in one go:
#   1. efficiency: requests per client CPU-second, same connections and pipeline depth
#      (goal: at least 1.5x redis-benchmark's);
#   2. accuracy at a fixed rate well below saturation (a fifth of what one closed-loop connection
#      achieves, so each request is mostly alone on the server): achieved rate within 1% of the
#      target, and p50/p99 within 10% of redis-benchmark's with one connection (-c 1), which is
#      the same unloaded latency; redis-benchmark has no fixed-rate mode to compare with directly;
#   3. a 0.5 s stall of the server (SIGSTOP/SIGCONT) mid-run, which must show in the corrected p99
#      (and, for contrast, what redis-benchmark reports across the same stall).
# The server runs on one CPU and the load generators on another (taskset) when the machine has two.
# Usage: loadgen/bench/vs_redis_benchmark.sh [REQUESTS]   (default 400000 per efficiency run;
#        ROUNDS=3 efficiency rounds and SAME_ROUNDS=7 same-load rounds, taken in turn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQUESTS="${1:-400000}"
ROUNDS="${ROUNDS:-3}"        # efficiency rounds per setting
SAME_ROUNDS="${SAME_ROUNDS:-7}"  # same-load rounds per connection count
"$ROOT/switchyard" build --preset release
SY="$ROOT/build/release/cli/switchyard"
WORK="$(mktemp -d)"
trap 'kill -CONT "$REDIS_PID" 2>/dev/null; kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

if (($(nproc) >= 2)); then SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); else SERVER_CPU=(); CLIENT_CPU=(); fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${SERVER_CPU[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
# Fill the key space so GETs find values, as in a real cache.
redis-benchmark -p "$PORT" -t set -r 100000 -n 200000 -d 64 -q >/dev/null

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: redis-server $(redis-server --version | grep -o 'v=[0-9.]*'), pinned: ${SERVER_CPU[*]:-no}"
echo

# CPU seconds (user + system) of one command, from GNU time.
cpu_of() { awk '{print $1 + $2}' "$1"; }
json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d; [v:=v[k] for k in sys.argv[2].split('.')]; print(v)" "$1" "$2"; }

echo "== 1. requests per client CPU-second (closed loop, GET, 64-byte values, $REQUESTS requests;"
echo "      $ROUNDS rounds taken in turn, medians, and each round's ratio)"
printf '%-22s %14s %14s %9s  %s\n' "connections/pipeline" "redis-bench" "switchyard" "ratio" "rounds"
for setting in "50 1" "50 16" "500 1"; do
  read -r conns depth <<<"$setting"
  : >"$WORK/eff"
  for ((round = 0; round < ROUNDS; round++)); do
    /usr/bin/time -f '%U %S' -o "$WORK/rb.time" "${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" \
      -c "$conns" -P "$depth" -n "$REQUESTS" -t get -r 100000 -d 64 --csv >"$WORK/rb.csv" 2>/dev/null
    /usr/bin/time -f '%U %S' -o "$WORK/sy.time" "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" \
      -c "$conns" -P "$depth" -n "$REQUESTS" --warmup 0 --mix get --keys 100000 -q \
      --json "$WORK/sy.json" >/dev/null
    echo "$(cpu_of "$WORK/rb.time") $(cpu_of "$WORK/sy.time")" >>"$WORK/eff"
  done
  python3 - "$conns/$depth" "$REQUESTS" "$WORK/eff" <<'PY'
import statistics, sys
n = float(sys.argv[2])
rounds = [tuple(map(float, line.split())) for line in open(sys.argv[3])]
rb = statistics.median(n / r for r, _ in rounds)
sy = statistics.median(n / s for _, s in rounds)
each = " ".join(f"{r / s:.2f}x" for r, s in rounds)
print(f"{sys.argv[1]:<22} {rb:14.0f} {sy:14.0f} {sy / rb:8.2f}x  {each}")
PY
done
echo

echo "== 2a. the same load: closed loop, 1 and 10 connections, GET; medians of $SAME_ROUNDS runs taken in turn"
printf '%-12s %12s %12s %12s %12s\n' "connections" "rb p50" "sy p50" "rb p99" "sy p99"
for conns in 1 10; do
  for ((round = 0; round < SAME_ROUNDS; round++)); do
    "${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" -c "$conns" -P 1 -n 30000 -t get -r 100000 --csv \
      --precision 3 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $5 * 1000, $7 * 1000}' \
      >>"$WORK/same_rb_$conns"
    "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" -c "$conns" -n 30000 --warmup 0 --mix get \
      --keys 100000 -q --json "$WORK/same.json" >/dev/null
    python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['latency']; print(l['p50']*1e6, l['p99']*1e6)" \
      "$WORK/same.json" >>"$WORK/same_sy_$conns"
  done
  python3 - "$conns" "$WORK/same_rb_$conns" "$WORK/same_sy_$conns" <<'PY'
import statistics, sys
rb = [list(map(float, l.split())) for l in open(sys.argv[2])]
sy = [list(map(float, l.split())) for l in open(sys.argv[3])]
m = lambda runs, i: statistics.median(r[i] for r in runs)
print(f"{sys.argv[1]:<12} {m(rb,0):10.1f}us {m(sy,0):10.1f}us {m(rb,1):10.1f}us {m(sy,1):10.1f}us"
      f"   p50 {100 * (m(sy,0) / m(rb,0) - 1):+.1f}%, p99 {100 * (m(sy,1) / m(rb,1) - 1):+.1f}%")
PY
done
echo

echo "== 2. fixed rate well below saturation"
# The server's unloaded latency as redis-benchmark sees it: one connection, one request at a time.
"${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" -c 1 -P 1 -n 50000 -t get -r 100000 --csv \
  --precision 3 >"$WORK/rb1.csv" 2>/dev/null
IFS=, read -r _ rb_rps _ _ rb_p50 _ rb_p99 _ < <(tail -1 "$WORK/rb1.csv" | tr -d '"')
# The same requests arriving at a fixed rate of a fifth of that, on 10 connections: each request
# mostly alone on the server, so its latency is the unloaded one too.
RATE=$(awk -v r="$rb_rps" 'BEGIN{printf "%d", r / 5}')
# Three ways: the default (sleep, wake 50 us before each send and spin to its exact time),
# sleeping until each send is due (--spin 0: the thread's wake-up delay lands in the latency),
# and spinning all the time (--busy-poll: replies are seen at once too, for a whole client CPU).
for mode in default --spin=0 --busy-poll; do
  extra=()
  [[ "$mode" != default ]] && extra=("$mode")
  "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" -c 10 --rate "$RATE" -d 10s --warmup 1s --mix get \
    --keys 100000 -q "${extra[@]}" --json "$WORK/rate_${mode//[-=]/}.json" >"$WORK/rate.txt"
  echo "-- switchyard load $mode"
  cat "$WORK/rate.txt"
  python3 - "$WORK/rate_${mode//[-=]/}.json" "$RATE" "$rb_p50" "$rb_p99" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rate = float(sys.argv[2])
rb50, rb99 = float(sys.argv[3]) / 1e3, float(sys.argv[4]) / 1e3
p50, p99 = r["latency"]["p50"], r["latency"]["p99"]
print(f"target {rate:.0f}/s, achieved {r['throughput']:.1f}/s: {100 * (r['throughput'] / rate - 1):+.2f}%"
      f"  (client_limited={r['client_limited']}; client CPU {r['client_cpu_seconds']:.2f} s,"
      f" of which spinning {r.get('client_spin_seconds', 0):.2f} s)")
print(f"p50 {p50 * 1e6:.1f}us vs redis-benchmark {rb50 * 1e6:.1f}us: {100 * (p50 / rb50 - 1):+.1f}%")
print(f"p99 {p99 * 1e6:.1f}us vs redis-benchmark {rb99 * 1e6:.1f}us: {100 * (p99 / rb99 - 1):+.1f}%")
PY
done
echo

echo "== 3. a 0.5 s server stall at t=3s in a 6 s run at $RATE/s"
stall() { sleep "$1"; kill -STOP "$REDIS_PID"; sleep 0.5; kill -CONT "$REDIS_PID"; }
stall 3 &
STALL_PID=$!
"${CLIENT_CPU[@]}" "$SY" load --port "$PORT" -c 10 --rate "$RATE" -d 6s --warmup 0 --mix get \
  --keys 100000 -q --json "$WORK/stall.json"
wait "$STALL_PID"  # not a bare wait: redis-server is a background job too
python3 - "$WORK/stall.json" "$WORK/rate_default.json" <<'PY'
import json, sys
s, q = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(f"corrected p99 {s['latency']['p99'] * 1e3:.1f} ms with the stall, "
      f"{q['latency']['p99'] * 1e3:.3f} ms without; max {s['latency']['max'] * 1e3:.0f} ms")
PY
# redis-benchmark across the same kind of stall: closed loop, so requests not sent during the
# stall are never timed (coordinated omission); only the few in flight show it. It runs as fast
# as it can, so the stall comes 0.2 s in and the run is long enough (20x the rate) to span it.
N=$((RATE * 20))
stall 0.2 &
STALL_PID=$!
"${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" -c 10 -n "$N" -t get -r 100000 --csv --precision 3 \
  >"$WORK/rbstall.csv" 2>/dev/null
wait "$STALL_PID"
IFS=, read -r _ _ _ _ _ _ rbs_p99 rbs_max < <(tail -1 "$WORK/rbstall.csv" | tr -d '"')
echo "redis-benchmark across a 0.5 s stall (closed loop, $N requests): p99 ${rbs_p99} ms, max ${rbs_max} ms"
