#!/usr/bin/env bash
# The compose stack's load generator: cycles through the standard scenarios against each model in
# turn, forever. Each run serves its live metrics on the port Prometheus scrapes for that model
# (LOAD_METRICS_BASE + the model's number), so the dashboards show the load generator's view of the
# model under load.
#
# Until `switchyard load` is in the image, redis-benchmark drives the same scenarios as near as it
# can: closed loop, no metrics of its own (the servers' metrics still show everything they do), one
# command a run (so "a few blocking among fast" becomes a short SY.BLOCK on every request), and
# no rate limit (so the idle connections are busy).
#
# Environment: SWITCHYARD_HOST (127.0.0.1), SCENARIO_SECONDS (30), MODELS ("name:number ...").
set -uo pipefail

host="${SWITCHYARD_HOST:-127.0.0.1}"
seconds="${SCENARIO_SECONDS:-30}"
models="${MODELS:-prefork:1 thread_per_conn:2 thread_pool:3 fiber:4 coroutine:5 grpc:6}"
port_base="${PORT_BASE:-6380}"
load_metrics_base="${LOAD_METRICS_BASE:-9190}"

# name | switchyard load flags | redis-benchmark flags (the fallback)
scenarios=(
  "echo, 10 connections|--connections 10 --mix echo --rate 20k|-c 10 -t ping"
  "echo, 200 connections|--connections 200 --mix echo --rate 20k|-c 200 -t ping"
  "get/set 90/10|--connections 50 --mix get:90,set:10 --rate 20k|-c 50 -t get,set -r 100000"
  "downstream wait 1ms, 500 connections|--connections 500 --mix sy.wait:1000 --rate 10k|-c 500 SY.WAIT 1000"
  "a few blocking among fast|--connections 50 --mix get:99,sy.block:10000:1 --rate 5k|-c 50 SY.BLOCK 200"
  "CPU-bound 100us|--connections 20 --mix sy.cpu:100 --rate 5k|-c 20 SY.CPU 100"
  "idle connections|--connections 2000 --mix get --rate 200|-c 2000 -t get"
)

have_load=false
switchyard --help 2>/dev/null | grep -qE '^\s+load\b' && have_load=true
echo "load-cycle: ${seconds}s a scenario against $host; load generator: $($have_load && echo 'switchyard load' || echo 'redis-benchmark (switchyard load not in this image)')"

while true; do
  for entry in $models; do
    model="${entry%%:*}" number="${entry##*:}"
    port=$((port_base + number))
    if [[ "$model" == grpc ]]; then
      echo "load-cycle: $model speaks kv.proto, not RESP: no RESP load for it"
      continue
    fi
    if ! redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then
      echo "load-cycle: $model on $host:$port does not answer; next"
      continue
    fi
    for scenario in "${scenarios[@]}"; do
      IFS='|' read -r name load_flags benchmark_flags <<<"$scenario"
      echo "load-cycle: $model: $name"
      if $have_load; then
        # shellcheck disable=SC2086 # the flags are words on purpose
        switchyard load --host "$host" --port "$port" --threads 1 $load_flags \
          --duration "${seconds}s" --warmup 0 --quiet --metrics-port $((load_metrics_base + number)) \
          >/dev/null
      else
        # shellcheck disable=SC2086
        timeout "$seconds" redis-benchmark -h "$host" -p "$port" -n 2000000000 -q $benchmark_flags \
          >/dev/null 2>&1
      fi
    done
  done
done
