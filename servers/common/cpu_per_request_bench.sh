#!/usr/bin/env bash
# Server CPU time per request of two switchyard binaries, BEFORE and AFTER, in one run: the A/B
# check for a change that must leave the per-request cost alone (say, within 3%).
#
# Both servers of a model run at once, each with one event loop on CPU 0 (an idle server costs
# nothing), the load on CPU 1 (when there are two). Each round loads one, then the other, at each
# pipeline, so that the two runs of a pair are seconds apart; the order flips every round (A B,
# B A, ...) so that drift hits both sides alike. The verdict is on the median of the per-round
# ratios AFTER/BEFORE, with their min..max beside it.
#
# The load is our own generator in closed loop (50 connections, pipeline 1 then 16, ECHO of 64
# bytes by default: the session's read/parse/write path with no store work to dilute a change to
# it), not redis-benchmark: at pipeline 1 redis-benchmark spends more client CPU per request, so
# it, not the server, sets the pace, the server idles between wake-ups, and its CPU a request
# follows the client's pace rather than the server's code. The AFTER binary's generator drives
# both sides.
#
# CPU per request = (user + system CPU) / requests, both summed from the server's own Prometheus
# endpoint scraped just before and after each run, with the server idle (a prefork scrape under
# load would mix instants: it reads its workers one after the other). switchyard_cpu_seconds_total
# covers every process and thread of the server (prefork's workers too; getrusage and schedstat
# nanoseconds, not 10 ms ticks) and switchyard_requests_total every request served. About one
# scrape's own CPU falls inside each span; prefork's reads /proc for each of its 256 workers, a
# few percent of a short run, which would pull both sides alike and the ratio towards 1. So each
# server's scrape is measured once (the median step of six idle scrapes) and subtracted.
#
# Other work on the machine moves CPU per request (a client slowed by it leaves the server idle
# more, and a server sharing its CPU loses its caches), and so does what no guest can see, other
# tenants of a virtual machine's host. Each pair prints what it could see: how long the load
# generator waited, runnable, for CPU 1 (its schedstat), and the time CPU 0 spent on anything but
# the server (/proc/stat's busy and steal ticks less the server's CPU). On a shared VM, pairs that
# saw no other work differ about as much as the others, and pairing removes only part of the
# noise: what narrows the result is the number of pairs, so many short runs beat a few long ones
# (docs/measurements/2026-12-07-cpu-per-request-aa.md measured both). The table gives, beside the
# median ratio, an interval that holds the true median with 95% confidence (order statistics),
# and says whether the verdict is resolved at that noise.
#
# Usage: servers/common/cpu_per_request_bench.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]  (default 20)
# Environment: MODELS (default: the C++ RESP models in the registry, those serving through Session),
#   PIPELINES ("1 16"), CONNECTIONS (50), DURATION (1, seconds of each measured run),
#   WARMUP (1, seconds of load at each pipeline once a server, unmeasured), MIX (echo),
#   VALUE_SIZE (64), TOLERANCE (3, percent), ROUNDS, RESULTS (a file to keep each pair in).
# Exits non-zero only when something fails to run, never on a ratio: a measurement, not a test.
# The default run takes about 9 minutes: 5 models x 2 pipelines x 20 rounds x 2 runs of ~1.3 s,
# plus each model's starts and warm-ups.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops that substitution too

usage() { sed -n '/^# Usage:/,/^# Exits/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 2 && $# <= 3)) || usage
before="$1" after="$2" rounds="${3:-${ROUNDS:-20}}"
for binary in "$before" "$after"; do
  [[ -x "$binary" ]] || { echo "not an executable: $binary" >&2; exit 2; }
done
# By default the C++ RESP models of the AFTER binary's registry: those that serve through Session.
models="${MODELS:-$("$after" serve --list-models --format=tsv |
  awk -F'\t' '$2 == "resp" && $5 == "c++" {printf "%s ", $1}')}"
pipelines="${PIPELINES:-1 16}"
connections="${CONNECTIONS:-50}"
duration="${DURATION:-1}"
warmup="${WARMUP:-1}"
mix="${MIX:-echo}"
value_size="${VALUE_SIZE:-64}"
tolerance="${TOLERANCE:-3}"
for n in "$rounds" "$duration" "$warmup" "$connections"; do
  [[ "$n" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "not a count: '$n' (no arguments: usage)" >&2; exit 2; }
done
for tool in taskset curl timeout; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

server_cpu=0 client_cpu=1
(($(nproc) < 2)) && client_cpu=0
hz="$(getconf CLK_TCK)"

work="$(mktemp -d)"
declare -A pid=() port=() metrics_port=() scrape_cpu=()
stop_servers() {  # SIGTERM, up to 15 s to drain (prefork stops 256 workers), then SIGKILL
  local side status
  for side in "${!pid[@]}"; do
    if ! kill -0 "${pid[$side]}" 2>/dev/null; then  # it died on its own: say how
      status=0
      wait "${pid[$side]}" 2>/dev/null || status=$?
      echo "server $side (pid ${pid[$side]}) had exited, status $status" \
        "$( ((status > 128)) && echo "(signal $((status - 128)))")" >&2
    fi
    kill -TERM "${pid[$side]}" 2>/dev/null || true
  done
  for side in "${!pid[@]}"; do
    for ((i = 0; i < 150; i++)); do
      kill -0 "${pid[$side]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pid[$side]}" 2>/dev/null || true
    wait "${pid[$side]}" 2>/dev/null || true
  done
  pid=()
}
trap 'stop_servers; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Exits 1 with the message, whether that server is still alive (a crash is a finding) and the
# end of its stderr. Called in $(...) too, whose exit set -e turns into the script's.
fail() {  # $1 side or "", then the message
  local side="$1"
  shift
  echo "cpu_per_request_bench: $*" >&2
  if [[ -n "$side" && -n "${pid[$side]:-}" ]]; then
    if kill -0 "${pid[$side]}" 2>/dev/null; then
      echo "server $side (pid ${pid[$side]}) is still running" >&2
    else
      echo "server $side (pid ${pid[$side]}) has exited; its stderr ends:" >&2
    fi
    tail -c 1000 "$work/server-$side.err" >&2 || true
  fi
  exit 1
}

# Starts BINARY serving MODEL on CPU 0 as SIDE; sets pid, port, metrics_port of SIDE.
start_server() {  # $1 side, $2 binary, $3 model
  local ready=""
  : >"$work/server-$1.out"
  taskset -c "$server_cpu" "$2" serve --model "$3" --threads 1 --port 0 --metrics-port 0 \
    --quiet >"$work/server-$1.out" 2>"$work/server-$1.err" &
  pid[$1]=$!  # taskset execs the server, so this is the server's own pid
  for ((i = 0; i < 300; i++)); do  # up to 30 s: prefork forks its workers before it is ready
    ready="$(grep -m1 '^switchyard ready:' "$work/server-$1.out" || true)"
    [[ -n "$ready" ]] && break
    kill -0 "${pid[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$ready" ]] || fail "$1" "$3 ($2) did not get ready"
  port[$1]="$(sed -E 's/.* port=([0-9]+) .*/\1/' <<<"$ready")"
  metrics_port[$1]="$(sed -E 's/.* metrics_port=([0-9]+) .*/\1/' <<<"$ready")"
}

# Prints "cpu_seconds requests errors" of SIDE, each summed over its series. A few tries: other
# work on the machine holding thousands of loopback connections has made a connect fail.
scrape() {  # $1 side
  local try
  for ((try = 1; ; try++)); do
    taskset -c "$client_cpu" curl -sSf --max-time 10 \
      "http://127.0.0.1:${metrics_port[$1]}/metrics" >"$work/scrape" 2>"$work/curl.err" && break
    ((try < 5)) || fail "$1" "scrape of server $1 failed: $(cat "$work/curl.err")"
    sleep 0.2
  done
  awk '/^switchyard_cpu_seconds_total\{/ {cpu += $NF}
       /^switchyard_requests_total\{/ {req += $NF}
       /^switchyard_request_errors_total\{/ {err += $NF}
       END {printf "%.9f %.0f %.0f\n", cpu, req, err}' "$work/scrape"
}

# CPU 0's busy time in ticks: user nice system irq softirq, and steal (the hypervisor's).
cpu0_busy() { awk -v c="cpu$server_cpu" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

load() {  # $1 side, $2 pipeline, $3 seconds; the AFTER binary's generator drives both sides
  timeout --kill-after=5 "$(($3 + 60))" taskset -c "$client_cpu" "$after" load \
    --port "${port[$1]}" -c "$connections" --pipeline "$2" --mix "$mix" \
    --value-size "$value_size" --duration "$3s" --warmup 0 --quiet --json "$work/load.json" \
    >"$work/load.out" 2>&1 ||
    fail "$1" "load at pipeline $2 failed: $(tail -c 300 "$work/load.out")"
}

json_number() {  # $1 field of the load generator's JSON result; 0 when absent
  grep -o "\"$1\": *[0-9.e+-]*" "$work/load.json" | sed 's/.*: *//' | grep . || echo 0
}

# One scrape's own CPU on SIDE, idle: the median of the differences of six scrapes back to back.
scrape_cost() {  # $1 side
  local i
  for ((i = 0; i < 6; i++)); do scrape "$1"; done |
    awk 'NR > 1 {d[NR - 1] = $1 - last} {last = $1}
      END {n = NR - 1; for (i = 2; i <= n; i++) for (j = i; j > 1 && d[j - 1] > d[j]; j--) {
        t = d[j]; d[j] = d[j - 1]; d[j - 1] = t }; printf "%.9f\n", d[int((n + 1) / 2)]}'
}

# One measured run of SIDE at PIPELINE, scraped just before and just after. Prints
# "ns_per_request requests_per_second scrape_share load_wait_seconds cpu0_other_seconds"; the
# last is at most what it says (the scrapes' own spans are in it).
measure() {  # $1 pipeline, $2 side
  local s0 s1 t0 t1 busy0 busy1
  t0="$(date +%s.%N)" busy0="$(cpu0_busy)"
  s0="$(scrape "$2")"
  load "$2" "$1" "$duration"
  s1="$(scrape "$2")"
  t1="$(date +%s.%N)" busy1="$(cpu0_busy)"
  awk -v t0="$t0" -v t1="$t1" -v a="$s0" -v b="$s1" -v hz="$hz" -v scrape="${scrape_cpu[$2]}" \
    -v busy="$((busy1 - busy0))" -v lw="$(json_number client_run_queue_wait_seconds)" \
    -v lc="$(json_number client_cpu_seconds)" -v shared="$((server_cpu == client_cpu))" 'BEGIN {
    split(a, y); split(b, z)
    cpu = z[1] - y[1] - scrape; n = z[2] - y[2]
    if (n <= 0 || cpu <= 0) { print "no requests or no CPU counted" > "/dev/stderr"; exit 1 }
    if (z[3] > y[3]) printf "warning: %d error replies\n", z[3] - y[3] > "/dev/stderr"
    other = busy / hz - cpu - scrape - (shared ? lc : 0)
    printf "%.2f %.0f %.5f %.4f %.4f\n", cpu / n * 1e9, n / (t1 - t0), scrape / (cpu + scrape),
           lw, (other > 0) ? other : 0 }' || fail "$2" "bad scrape"
}

echo "BEFORE (A) $before; AFTER (B) $after; models: $models; pipelines: $pipelines;" \
  "$connections connections, --mix $mix --value-size $value_size, ${duration}s a run," \
  "$rounds rounds; servers on CPU $server_cpu, load on CPU $client_cpu" >&2
# results: "model pipeline round ns_A ns_B rps_A rps_B scrape_share other_share", the last the
# pair's largest intrusion of other work (load generator's wait, CPU 0's other time) per run time.
results="${RESULTS:-$work/results}"
: >"$results"
SECONDS=0
for model in $models; do
  start_server A "$before" "$model"
  start_server B "$after" "$model"
  # Buffers, store, allocator arenas, page faults: steady state before the first span.
  for side in A B; do
    for p in $pipelines; do load "$side" "$p" "$warmup"; done
    scrape_cpu[$side]="$(scrape_cost "$side")"
  done
  for ((round = 1; round <= rounds; round++)); do
    for p in $pipelines; do
      # One assignment a statement, so that set -e sees a failed run.
      if ((round % 2)); then
        a="$(measure "$p" A)"; b="$(measure "$p" B)"
      else
        b="$(measure "$p" B)"; a="$(measure "$p" A)"
      fi
      awk -v m="$model" -v p="$p" -v r="$round" -v a="$a" -v b="$b" -v d="$duration" \
        -v out="$results" 'BEGIN { split(a, x); split(b, y)
        o = x[4]; if (x[5] > o) o = x[5]; if (y[4] > o) o = y[4]; if (y[5] > o) o = y[5]
        printf "%s %s %d %s %s %s %s %s %.4f\n", m, p, r, x[1], y[1], x[2], y[2], x[3],
          o / d >> out
        printf "%-15s P%-3s round %2d: BEFORE %7.1f ns %8.0f/s, AFTER %7.1f ns %8.0f/s, " \
          "ratio %.4f; load waited %.0f, %.0f ms; CPU 0 other %.0f, %.0f ms\n", m, p, r, x[1],
          x[2], y[1], y[2], y[1] / x[1], x[4] * 1000, y[4] * 1000, x[5] * 1000, y[5] * 1000
        }' >&2
    done
  done
  stop_servers
done
echo "$SECONDS s in all" >&2

# Per model and pipeline: medians of each side, and of the per-round ratios B/A with a
# distribution-free confidence interval (order statistics k and n+1-k, k from the binomial, the
# largest with at least 95% coverage; with few rounds, min..max and what it covers).
# "resolved": that interval lies wholly inside or wholly outside the tolerance, so this run's
# noise could not have made the verdict (as far as its pairs are independent: a machine whose load
# changes during the run makes them less so); otherwise the run could not tell.
echo "server CPU ns a request, median of $rounds rounds; ratio = AFTER/BEFORE of the same" \
  "round; other = median intrusion of other work on the machine, in % of a run"
printf '%-15s %4s %9s %9s %7s %19s %15s %6s %6s  %s\n' model pipe BEFORE AFTER ratio \
  "interval (cover)" "ratio min..max" scrape other "within ±$tolerance%?"
for model in $models; do
  for p in $pipelines; do
    awk -v m="$model" -v p="$p" -v tol="$tolerance" '
      function sort(v, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
          t = v[j]; v[j] = v[j - 1]; v[j - 1] = t } }
      function median(v, n) {
        sort(v, n); return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
      $1 == m && $2 == p { n++; a[n] = $4; b[n] = $5; q[n] = $5 / $4; s[n] = $8; o[n] = $9 }
      END {
        if (n == 0) exit
        ratio = median(q, n)  # sorts q
        # [q_k, q_(n+1-k)] covers the median with 1 - 2 P(B <= k - 1), B ~ Binomial(n, 1/2).
        k = 1; pj = 0.5 ^ n; cum = pj  # pj = P(B = k - 1), cum = P(B <= k - 1)
        while (2 * (k + 1) <= n + 1) {
          next_pj = pj * (n - k + 1) / k
          if (1 - 2 * (cum + next_pj) < 0.95) break
          k++; pj = next_pj; cum += pj }
        cover = 1 - 2 * cum
        lo = q[k]; hi = q[n + 1 - k]; low = 1 - tol / 100; high = 1 + tol / 100
        verdict = (ratio >= low && ratio <= high) ? "yes" : "NO"
        resolved = ((lo >= low && hi <= high) || hi < low || lo > high) ? "resolved" \
          : "not resolved"
        if (cover < 0.95) resolved = "too few rounds to resolve (6 at least)"
        printf "%-15s %4s %9.1f %9.1f %7.4f %6.4f..%-6.4f (%2.0f%%) %6.4f..%-6.4f %5.2f%% " \
          "%5.1f%%  %s (%+.1f%%), %s\n", m, p, median(a, n), median(b, n), ratio, lo, hi,
          cover * 100, q[1], q[n], median(s, n) * 100, median(o, n) * 100, verdict,
          (ratio - 1) * 100, resolved
      }' "$results"
  done
done
