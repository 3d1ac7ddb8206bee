#!/usr/bin/env bash
# Smoke test of the compose stack on a machine with a Docker engine: builds the image, brings the
# stack up, checks that every server target is up in Prometheus and that load is flowing, waits
# for the load service to go once through every scenario on every model (SCENARIO_SECONDS=8),
# then asks the stack's Prometheus every query of every dashboard panel, for every model, over
# that cycle (dashboards/dashboards_test.py --against): each must have data, as each panel of a
# Grafana showing those minutes would. Then it brings the stack down. Slow (it builds Switchyard
# in the image): not part of ./switchyard test.
#
# Where no registry can be reached, the Debian base image is made with debootstrap and
# `docker import` (needs root and debootstrap), Prometheus comes from Debian's package in an image
# built on that base, and Grafana is left out. The script says which it did.
#
# Usage: deploy/smoke.sh   (SMOKE_TIMEOUT: seconds to wait for each check, default 180; the cycle
#                          gets 15 minutes)
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
timeout_s="${SMOKE_TIMEOUT:-180}"
say() { echo "smoke: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (is dockerd running?)"
if docker compose version >/dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose >/dev/null; then compose=(docker-compose)
else fail "neither 'docker compose' nor 'docker-compose' is installed"; fi

base=debian:12.11-slim
prometheus_image=prom/prometheus:v2.53.4
services=(load prometheus grafana)  # and every model's server, once the image can list them
if timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
  say "registry reachable: $base, $prometheus_image and Grafana pulled"
  docker pull -q "$prometheus_image" >/dev/null
else
  base=switchyard/debian:12-debootstrap
  if docker image inspect "$base" >/dev/null 2>&1; then
    say "no registry: reusing $base, imported from a debootstrap of bookworm earlier"
  else
    say "no registry: building $base with debootstrap (bookworm, minbase) and docker import"
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
  prometheus_image=switchyard/prometheus:debian
  say "no registry: Prometheus from Debian's package in $prometheus_image; Grafana left out"
  docker build -q --network host -t "$prometheus_image" - >/dev/null <<DOCKERFILE
FROM $base
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/prometheus"]
DOCKERFILE
  unset 'services[-1]'
fi

export SWITCHYARD_BASE_IMAGE="$base" PROMETHEUS_IMAGE="$prometheus_image" SCENARIO_SECONDS=8
GRAFANA_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64)
export GRAFANA_ADMIN_PASSWORD
trap 'say "bringing the stack down"; "${compose[@]}" down -v >/dev/null 2>&1 || true' EXIT

say "building the image"
build_started=$(date +%s)
"${compose[@]}" build >/dev/null
say "image built in $(($(date +%s) - build_started)) s"
# The models, from the registry of the binary just built (the compose file is generated from it).
mapfile -t models < <(docker run --rm switchyard:local serve --list-models --format=tsv | cut -f1)
((${#models[@]})) || fail "the image's switchyard lists no model (serve --list-models)"
services=("${models[@]}" "${services[@]}")
"${compose[@]}" up -d "${services[@]}" >/dev/null 2>&1 || "${compose[@]}" up -d "${services[@]}"
stack_up=$(date +%s)

query() {  # prints the JSON answer of a Prometheus instant query
  curl -fsS --get http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" 2>/dev/null
}
value() { query "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null; }

# Every server target up.
deadline=$(($(date +%s) + timeout_s))
for model in "${models[@]}"; do
  until [[ "$(value "up{job=\"switchyard\",model=\"$model\"}")" == 1 ]]; do
    (($(date +%s) < deadline)) || fail "$model's target is not up in Prometheus"
    sleep 2
  done
  say "$model: target up"
done

until [[ -n "$(value 'sum(rate(switchyard_requests_total[30s])) > 0')" ]]; do
  (($(date +%s) < deadline)) || fail "no requests are flowing"
  sleep 2
done
say "load flowing: $(value 'sum(rate(switchyard_requests_total[30s]))') requests/s in all"

# One whole cycle of the load service: until its second cycle starts.
cycle_log() { "${compose[@]}" logs --no-color load 2>/dev/null; }
until [[ $(cycle_log | grep -c "load-cycle: ${models[0]}: echo, 10 connections") -ge 2 ]]; do
  (($(date +%s) < stack_up + 900)) || fail "the load service did not finish a cycle in 15 minutes"
  sleep 5
done
failed_runs=$(cycle_log | grep -c 'the run failed' || true)
((failed_runs == 0)) || fail "the load service reported $failed_runs failed runs: $(cycle_log | grep -B2 'the run failed' | head -20)"
say "load: one cycle of every scenario on every model, $(($(date +%s) - stack_up)) s after the stack came up; no run failed"
window=$(( ($(date +%s) - stack_up) / 60 + 1 ))m
python3 ../dashboards/dashboards_test.py --against http://127.0.0.1:9090 --window "$window" \
  --scrape-seconds 5 --models "$(IFS=,; echo "${models[*]}")" ||
  fail "a dashboard query has no data over the last $window"
say "every dashboard query has data for every model over the last $window"

if [[ " ${services[*]} " == *" grafana "* ]]; then
  until curl -fsS -u "admin:$GRAFANA_ADMIN_PASSWORD" \
      "http://127.0.0.1:3000/api/dashboards/uid/switchyard-overview" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "Grafana does not serve the overview dashboard"
    sleep 2
  done
  say "Grafana: dashboards provisioned"
fi
say "passed in $(($(date +%s) - started)) s"
