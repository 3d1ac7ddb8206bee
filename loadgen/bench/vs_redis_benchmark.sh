#!/usr/bin/env bash
# Holds `switchyard load` against redis-benchmark, on a private redis-server, in one go:
#   1. efficiency: requests per client CPU-second, same connections and pipeline depth
#      (goal: at least 1.5x redis-benchmark's);
#   2. accuracy: (a) the same closed-loop load through both tools; (b) a fixed rate well below
#      saturation, the rate redis-benchmark's one connection reaches (it has no fixed-rate mode,
#      so that is the same load): achieved rate within 1% of the target, and p50/p99 beside
#      redis-benchmark's, beside redis-benchmark's own repeat (how finely this machine can tell
#      two runs apart) and, where tcpdump can run, beside the server's part as loopback saw it
#      (wire_latency.py); (c) a fifth of that rate, where each request finds the server idle;
#   3. a 0.5 s stall of the server (SIGSTOP/SIGCONT) mid-run, which must show in the corrected p99
#      (and, for contrast, what redis-benchmark reports across the same stall).
# The server runs on one CPU and the load generators on another (taskset) when the machine has two.
# Usage: loadgen/bench/vs_redis_benchmark.sh [REQUESTS]   (default 400000 per unpipelined
#        efficiency run, 8x that pipelined; ROUNDS=5 efficiency rounds, SAME_ROUNDS=7 same-load
#        rounds and RATE_ROUNDS=3 fixed-rate rounds, each taken in turn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQUESTS="${1:-400000}"
ROUNDS="${ROUNDS:-5}"            # efficiency rounds per setting
SAME_ROUNDS="${SAME_ROUNDS:-7}"  # same-load rounds per connection count
RATE_ROUNDS="${RATE_ROUNDS:-3}"  # fixed-rate rounds
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

echo "== 1. requests per client CPU-second (closed loop, GET, 64-byte values, $REQUESTS requests,"
echo "      8x that pipelined; $ROUNDS rounds taken in turn, medians, and each round's ratio)"
printf '%-22s %14s %14s %9s  %s\n' "connections/pipeline" "redis-bench" "switchyard" "ratio" \
  "median of the rounds' ratios (each round's)"
for setting in "50 1" "50 16" "500 1"; do
  read -r conns depth <<<"$setting"
  # Pipelined runs are 8x longer, so that they too last seconds: a run of under a second would
  # weigh the start-up of either program (about 10 ms more for ours, which loads gRPC) and the
  # VM's passing noise more than the steady state being compared.
  requests=$((depth > 1 ? REQUESTS * 8 : REQUESTS))
  : >"$WORK/eff"
  for ((round = 0; round < ROUNDS; round++)); do
    /usr/bin/time -f '%U %S' -o "$WORK/rb.time" "${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" \
      -c "$conns" -P "$depth" -n "$requests" -t get -r 100000 -d 64 --csv >"$WORK/rb.csv" 2>/dev/null
    /usr/bin/time -f '%U %S' -o "$WORK/sy.time" "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" \
      -c "$conns" -P "$depth" -n "$requests" --warmup 0 --mix get --keys 100000 -q \
      --json "$WORK/sy.json" >/dev/null
    echo "$(cpu_of "$WORK/rb.time") $(cpu_of "$WORK/sy.time")" >>"$WORK/eff"
  done
  python3 - "$conns/$depth" "$requests" "$WORK/eff" <<'PY'
import statistics, sys
n = float(sys.argv[2])
rounds = [tuple(map(float, line.split())) for line in open(sys.argv[3])]
rb = statistics.median(n / r for r, _ in rounds)
sy = statistics.median(n / s for _, s in rounds)
# Each round's two runs were taken one after the other, so their ratio cancels the machine's
# slower drifts; the median of those is printed beside the ratio of the two medians.
paired = statistics.median(r / s for r, s in rounds)
each = " ".join(f"{r / s:.2f}x" for r, s in rounds)
print(f"{sys.argv[1]:<22} {rb:14.0f} {sy:14.0f} {sy / rb:8.2f}x  {paired:.2f}x ({each})")
PY
done
echo

rb_get() {  # CONNECTIONS REQUESTS -> redis-benchmark's "requests/s p50_us p99_us", closed loop
  "${CLIENT_CPU[@]}" redis-benchmark -p "$PORT" -c "$1" -P 1 -n "$2" -t get -r 100000 --csv \
    --precision 3 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $2, $5 * 1000, $7 * 1000}'
}
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }  # the hypervisor's, all CPUs, 1/USER_HZ s
rb_get_steal() {  # as rb_get, then the machine's steal over the run in % of its CPU time
  local before started figures
  before=$(steal_ticks)
  started=$(date +%s.%N)
  figures=$(rb_get "$@")
  echo "$figures $(awk -v t="$(($(steal_ticks) - before))" -v hz="$(getconf CLK_TCK)" \
    -v start="$started" -v end="$(date +%s.%N)" -v cpus="$(nproc --all)" \
    'BEGIN {printf "%.2f", 100 * t / hz / ((end - start) * cpus)}')"
}
latency_of() {  # JSON [pickup] -> a switchyard load result's "requests/s p50_us p99_us", and
                #   with "pickup" its reply pickup's "p50_us p99_us" and the machine's steal (%)
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); l=r['latency']
figures = [r['throughput'], l['p50'] * 1e6, l['p99'] * 1e6]
if len(sys.argv) > 2: figures += [r['reply_pickup']['p50'] * 1e6, r['reply_pickup']['p99'] * 1e6,
                                  round(100 * r.get('machine_steal_fraction', 0), 2)]
print(*figures)" "$@"
}

echo "== 2a. the same load: closed loop, 1 and 10 connections, GET; medians of $SAME_ROUNDS runs taken in turn"
printf '%-12s %12s %12s %12s %12s\n' "connections" "rb p50" "sy p50" "rb p99" "sy p99"
for conns in 1 10; do
  for ((round = 0; round < SAME_ROUNDS; round++)); do
    rb_get "$conns" 30000 | cut -d' ' -f2- >>"$WORK/same_rb_$conns"
    "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" -c "$conns" -n 30000 --warmup 0 --mix get \
      --keys 100000 -q --json "$WORK/same.json" >/dev/null
    latency_of "$WORK/same.json" | cut -d' ' -f2- >>"$WORK/same_sy_$conns"
  done
  python3 - "$conns" "$WORK/same_rb_$conns" "$WORK/same_sy_$conns" <<'PY'
import statistics, sys
rb = [list(map(float, l.split())) for l in open(sys.argv[2])]
sy = [list(map(float, l.split())) for l in open(sys.argv[3])]
m = lambda runs, i: statistics.median(r[i] for r in runs)
span = lambda runs, i: f"{min(r[i] for r in runs):.0f}-{max(r[i] for r in runs):.0f}"
print(f"{sys.argv[1]:<12} {m(rb,0):10.1f}us {m(sy,0):10.1f}us {m(rb,1):10.1f}us {m(sy,1):10.1f}us"
      f"   p50 {100 * (m(sy,0) / m(rb,0) - 1):+.1f}%, p99 {100 * (m(sy,1) / m(rb,1) - 1):+.1f}%"
      f"   (runs' p99: redis-benchmark {span(rb,1)}, switchyard {span(sy,1)} us)")
PY
done
echo

echo "== 2b. a fixed rate, the same load as redis-benchmark's one connection"
echo "   (redis-benchmark -c 1 runs back to back at some rate R; switchyard then sends at exactly R,"
echo "   uniform arrivals on 10 connections: the server sees the same requests at the same rate, far"
echo "   below its saturation. $RATE_ROUNDS rounds taken in turn, medians. --busy-poll: a client that"
echo "   never sleeps, the nearest a client gets to the server's own latency)"
sy_rate() {  # RATE JSON [FLAGS...] -> "achieved p50_us p99_us pickup_p50_us pickup_p99_us steal_%"
  local rate="$1" json="$2"
  shift 2
  "${CLIENT_CPU[@]}" "$SY" load --port "$PORT" -c 10 --rate "$rate" -d 5s --warmup 1s --mix get \
    --keys 100000 -q "$@" --json "$json" >"$json.txt"
  latency_of "$json" pickup
}
# How this machine stalls a CPU that is busy: a busy loop on the load generator's CPU for 3 s
# notes every gap over 100 us in its reading of the clock (the hypervisor running something else,
# or an interrupt). An open loop counts every request that falls into such a gap; a closed loop
# only the one it has in flight. -> "% of the time lost, gaps, longest_ms"
stall_probe() {
  "${CLIENT_CPU[@]}" python3 -c '
import time
end = time.perf_counter_ns() + 3_000_000_000
prev, lost, gaps, longest = time.perf_counter_ns(), 0, 0, 0
while prev < end:
    now = time.perf_counter_ns()
    if now - prev > 100_000:
        lost, gaps, longest = lost + now - prev, gaps + 1, max(longest, now - prev)
    prev = now
print(f"{100 * lost / 3e9:.2f} {gaps} {longest / 1e6:.2f}")'
}
# Each round ends with redis-benchmark once more, the same run again: how far the tool moves
# from itself a minute later is how finely this machine can compare two tools at all.
for ((round = 0; round < RATE_ROUNDS; round++)); do
  read -r rate rb50 rb99 rbsteal < <(rb_get_steal 1 40000)
  rate=${rate%.*}
  echo "$rate $rb50 $rb99 $rbsteal $(sy_rate "$rate" "$WORK/fixed.json")" \
    "$(sy_rate "$rate" "$WORK/busy.json" --busy-poll) $(rb_get_steal 1 40000 | cut -d' ' -f2-)" \
    "$(stall_probe)" >>"$WORK/fixed"
done
python3 - "$WORK/fixed" <<'PY'
import statistics, sys
# A row: R, redis-benchmark p50 p99 steal; switchyard achieved p50 p99 pickup-p50 pickup-p99 steal,
# the same --busy-poll; redis-benchmark again p50 p99 steal; the stall probe's % lost, gaps, longest.
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
m = lambda i: statistics.median(r[i] for r in rows)
span = lambda i: f"{min(r[i] for r in rows):g}-{max(r[i] for r in rows):g}"
worst = max(abs(r[i] / r[0] - 1) for r in rows for i in (4, 10))  # both switchyard runs
print(f"R (median) {m(0):.0f}/s; achieved within {100 * worst:.3f}% of R in every run")
print(f"{'':22} {'p50':>10} {'p99':>10}   machine steal during the runs (median)")
print(f"{'redis-benchmark -c 1':22} {m(1):8.1f}us {m(2):8.1f}us   {m(3):.2f}%")
print(f"{'switchyard --rate R':22} {m(5):8.1f}us {m(6):8.1f}us   {m(9):.2f}%   p50 {100 * (m(5) / m(1) - 1):+.1f}%,"
      f" p99 {100 * (m(6) / m(2) - 1):+.1f}% against redis-benchmark")
print(f"{'  its reply pickup':22} {m(7):8.1f}us {m(8):8.1f}us   (its own share: replies waiting for it)")
print(f"{'  the same, --busy-poll':22} {m(11):8.1f}us {m(12):8.1f}us   {m(15):.2f}%   reply pickup {m(13):.1f} / {m(14):.1f}us")
moved = lambda i: " ".join(f"{100 * (r[i + 15] / r[i] - 1):+.0f}%" for r in rows)
print(f"redis-benchmark against itself, the same run again at each round's end: p50 {moved(1)},"
      f" p99 {moved(2)}")
print(f"a busy loop on the load generator's CPU, 3 s each round: {span(19)}% of its time lost in"
      f" {span(20)} gaps over 100 us, the longest {span(21)} ms (an open loop at R counts every"
      f" request that falls into one; past 1% of the time, its p99 is such a gap)")
PY
# The third view: tcpdump on loopback (root only) times each request from its segment to the
# server's reply segment, which leaves out both clients' own costs. One more round of each tool,
# captured; what a tool reports above its own run's wire latency is that client's share.
if command -v tcpdump >/dev/null && ((EUID == 0)); then
  capture() {  # FILE COMMAND... -> runs COMMAND while capturing loopback to FILE
    local file="$1"
    shift
    "${SERVER_CPU[@]}" tcpdump -i lo -nn -B 16384 --time-stamp-precision=nano -w "$file" \
      "tcp port $PORT and (tcp[tcpflags] & tcp-push != 0)" 2>"$file.log" &
    local tcpdump=$!
    for _ in $(seq 100); do grep -q listening "$file.log" && break; sleep 0.05; done
    "$@"
    kill -TERM "$tcpdump"
    wait "$tcpdump" || true
  }
  read -r rate rb50 rb99 < <(capture "$WORK/rb.pcap" rb_get 1 40000)
  rate=${rate%.*}
  read -r _ sy50 sy99 pick50 pick99 _ < <(capture "$WORK/sy.pcap" sy_rate "$rate" "$WORK/wire.json")
  read -r _ wrb50 wrb99 < <("$ROOT/loadgen/bench/wire_latency.py" "$WORK/rb.pcap" "$PORT" 0.5)
  read -r _ wsy50 wsy99 < <("$ROOT/loadgen/bench/wire_latency.py" "$WORK/sy.pcap" "$PORT" 1)
  python3 - "$rate" "$rb50" "$rb99" "$wrb50" "$wrb99" "$sy50" "$sy99" "$wsy50" "$wsy99" \
    "$pick50" "$pick99" <<'PY'
import sys
rate, rb50, rb99, wrb50, wrb99, sy50, sy99, wsy50, wsy99, pick50, pick99 = map(float, sys.argv[1:])
print(f"captured round at {rate:.0f}/s (p50 / p99): the server's part on the wire, what the tool reported, the tool's share")
print(f"  redis-benchmark -c 1  {wrb50:6.1f} / {wrb99:6.1f}us   {rb50:6.1f} / {rb99:6.1f}us   {rb50 - wrb50:+.1f} / {rb99 - wrb99:+.1f}us")
print(f"  switchyard --rate R   {wsy50:6.1f} / {wsy99:6.1f}us   {sy50:6.1f} / {sy99:6.1f}us   {sy50 - wsy50:+.1f} / {sy99 - wsy99:+.1f}us"
      f"   (its own reply pickup: {pick50:.1f} / {pick99:.1f}us)")
PY
else
  echo "(no wire view: tcpdump missing or not root)"
fi
echo

# A fifth of R: each vCPU goes idle between requests, so every request also pays the server's
# wake-up; redis-benchmark's closed loop never runs at such a load. The rate and lag are what
# matter here, and the tail for the stall below.
RATE=$(awk -v r="$rate" 'BEGIN{printf "%d", r / 5}')
echo "== 2c. a fixed rate of $RATE/s (a fifth of R), two ways: the default (sleep, wake before each"
echo "   send by a learned margin and spin to its exact time; poll while a reply is owed) and"
echo "   --spin 0 (sleep until each send is due and each reply arrives)"
for mode in default --spin=0; do
  extra=()
  [[ "$mode" != default ]] && extra=("$mode")
  achieved=$(sy_rate "$RATE" "$WORK/rate_${mode//[-=]/}.json" "${extra[@]}")  # a failure stops here
  achieved=${achieved%% *}
  echo "-- switchyard load $mode"
  cat "$WORK/rate_${mode//[-=]/}.json.txt"
  awk -v rate="$RATE" -v achieved="$achieved" \
    'BEGIN {printf "target %d/s, achieved %.1f/s: %+.3f%%\n", rate, achieved, 100 * (achieved / rate - 1)}'
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
