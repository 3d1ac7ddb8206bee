#!/usr/bin/env bash
# The compose stack's load generator: cycles through the standard scenarios against each model in
# turn, forever. Each run serves its live metrics on the port Prometheus scrapes for that model
# (LOAD_METRICS_BASE + the model's number), so the dashboards show the load generator's view of the
# model under load. A model that speaks kv.proto gets the same scenarios as gRPC calls
# (`--protocol grpc`).
#
# The models, their numbers and protocols come from the binary's registry (`switchyard serve
# --list-models`): model N is the Nth it lists, on port PORT_BASE+N.
#
# Environment: SWITCHYARD_HOST (127.0.0.1), SCENARIO_SECONDS (30), MODELS ("name:number ...";
# default: every model of the registry), PORT_BASE (6380), LOAD_METRICS_BASE (9190), CYCLES (0:
# forever; the smoke test runs one), SWITCHYARD (the binary; default: switchyard in PATH).
set -uo pipefail

host="${SWITCHYARD_HOST:-127.0.0.1}"
seconds="${SCENARIO_SECONDS:-30}"
port_base="${PORT_BASE:-6380}"
load_metrics_base="${LOAD_METRICS_BASE:-9190}"
cycles="${CYCLES:-0}"
switchyard="${SWITCHYARD:-switchyard}"

# "name number protocol", a line a model, in the registry's order.
registry="$("$switchyard" serve --list-models --format=tsv | awk -F'\t' '{print $1, NR, $2}')"
if [[ -z "$registry" ]]; then
  echo "load-cycle: '$switchyard serve --list-models' listed no model" >&2
  exit 1
fi
models="${MODELS:-$(awk '{print $1 ":" $2}' <<<"$registry")}"

# name | switchyard load flags: each scenario's runs in the cycle, declared beside the rest of the
# scenario in compare/scenarios.py (its cycle()). Open-loop rates well below what any model serves
# here, so every model shows the same offered load and the dashboards compare what it costs each.
# BEGIN generated scenarios: deploy/generate.py, from compare/scenarios.py
scenarios=(
  "echo, 10 connections|--connections 10 --mix echo --rate 20k"
  "echo, 200 connections|--connections 200 --mix echo --rate 20k"
  "get/set 90/10|--connections 50 --mix get:90,set:10 --rate 20k"
  "downstream wait 1ms, 500 connections|--connections 500 --mix sy.wait:1000 --rate 10k"
  "a few blocking among fast|--connections 50 --mix get:99,sy.block:10000:1 --rate 5k"
  "CPU-bound 100us|--connections 20 --mix sy.cpu:100 --rate 5k"
  "idle connections|--connections 1000 --mix get --rate 100"
)
# END generated scenarios

echo "load-cycle: ${seconds}s a scenario against $host"
# The servers start beside this script (compose starts them together): give each up to 60 s to
# listen before the first cycle, so the first runs do not fail for being early.
for entry in $models; do
  port=$((port_base + ${entry##*:}))
  for ((try = 0; try < 120; try++)); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
    sleep 0.5
  done
done
cycle=0
while ((cycles == 0 || cycle < cycles)); do
  cycle=$((cycle + 1))
  for entry in $models; do
    model="${entry%%:*}" number="${entry##*:}"
    port=$((port_base + number))
    protocol="$(awk -v model="$model" '$1 == model {print $3}' <<<"$registry")"
    if [[ -z "$protocol" ]]; then
      echo "load-cycle: $model is not a model of '$switchyard serve --list-models'; next model"
      sleep 1  # so a MODELS naming no model does not spin
      continue
    fi
    for scenario in "${scenarios[@]}"; do
      IFS='|' read -r name load_flags <<<"$scenario"
      echo "load-cycle: $model: $name"
      # shellcheck disable=SC2086 # the flags are words on purpose
      if ! "$switchyard" load --protocol "$protocol" --host "$host" --port "$port" --threads 1 \
        $load_flags --duration "${seconds}s" --warmup 0 --quiet \
        --metrics-port $((load_metrics_base + number)) >/dev/null; then
        # A model that is down (or restarting) costs its turn, not the cycle; say it once.
        echo "load-cycle: $model on $host:$port: the run failed (above); next model"
        sleep 1  # so a stack with every model down does not spin
        break
      fi
    done
  done
done
