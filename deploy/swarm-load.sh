#!/usr/bin/env bash
# One load run from N load-generator tasks on a Docker swarm (docs/load-swarm.md): a replicated job
# on the host network, each task `switchyard load --workers N --worker-index I --start-at T` with I
# from its task slot, its result written through a bind mount, then `switchyard load merge`.
# No coordinator of our own: the swarm schedules, the shared --start-at synchronises, merge checks.
#
# Usage: deploy/swarm-load.sh [options] [-- flags of every switchyard load: -c 30 -R 30k -d 10s]
#   --workers N          load-generator tasks, one worker each (default 3)
#   --host H, --port P   the server to load (default 127.0.0.1 6380): every task connects there
#   --serve MODEL        also start `switchyard serve --model MODEL` as a service on this node's
#                        host network, bound to --host:--port, and remove it at the end; without
#                        it the server must be running
#   --metrics-port P     with --serve: the server's metrics port (default 9180)
#   --image IMAGE        the Switchyard image, present on every node (default $SWITCHYARD_IMAGE or
#                        switchyard:local; deploy/Dockerfile builds it)
#   --results DIR        where each task writes worker-I.json and the merge merged.json; mounted
#                        into every task at /results, so on a multi-node swarm it must be one
#                        shared directory at the same path on every node
#                        (default ./swarm-load-results/TIME)
#   --start-in SECONDS   put --start-at this far ahead, for the swarm to schedule and start every
#                        task: a task that starts after it fails (default 15)
#   --timeout SECONDS    how long after --start-at to wait for every task to end (default 300)
#   --run-id ID          passed to every worker (default: the load generator's, the --start-at text)
#   --constraint EXPR    a placement constraint of the load tasks (repeatable), e.g.
#                        node.labels.switchyard-load==true to keep them off the server's node
#   --name NAME          prefix of the services it creates (default switchyard-load)
#
# It needs a swarm manager (a single-node swarm does). It removes the services it created when it
# ends, however it ends, and changes nothing else in the swarm. Exit status: 0 when every worker
# succeeded and the merge accepted their results; 1 otherwise, with the failed task's logs.
set -euo pipefail

say() { echo "swarm-load: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

workers=3 host=127.0.0.1 port=6380 metrics_port=9180 serve_model=""
image="${SWITCHYARD_IMAGE:-switchyard:local}" results="" start_in=15 timeout_s=300 run_id=""
name=switchyard-load constraints=() load_args=()
value() { (($# >= 2)) || fail "$1 needs a value"; }
while (($#)); do
  case "$1" in
    --workers) value "$@"; workers="$2"; shift 2 ;;
    --host) value "$@"; host="$2"; shift 2 ;;
    --port) value "$@"; port="$2"; shift 2 ;;
    --metrics-port) value "$@"; metrics_port="$2"; shift 2 ;;
    --serve) value "$@"; serve_model="$2"; shift 2 ;;
    --image) value "$@"; image="$2"; shift 2 ;;
    --results) value "$@"; results="$2"; shift 2 ;;
    --start-in) value "$@"; start_in="$2"; shift 2 ;;
    --timeout) value "$@"; timeout_s="$2"; shift 2 ;;
    --run-id) value "$@"; run_id="$2"; shift 2 ;;
    --constraint) value "$@"; constraints+=(--constraint "$2"); shift 2 ;;
    --name) value "$@"; name="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; load_args=("$@"); break ;;
    *) fail "unknown option '$1' (--help lists them; flags for switchyard load go after --)" ;;
  esac
done
for number in "$workers" "$port" "$metrics_port" "$start_in" "$timeout_s"; do
  [[ "$number" =~ ^[0-9]+$ ]] || fail "'$number' is not a whole number"
done
((workers >= 1)) || fail "--workers must be at least 1"
# Every worker must be running before --start-at, or it fails as late: too short a lead is a run
# that fails, not one that runs short.
((start_in >= 5)) || fail "--start-in below 5 s leaves the swarm no time to start the tasks"

# The engine, in swarm mode, and this node a manager (only managers create services).
command -v docker >/dev/null ||
  fail "no docker command: install Docker (Debian: apt-get install docker.io)"
state=$(timeout 20 docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' \
  2>/dev/null) ||
  fail "no Docker engine answers (is dockerd running? can this user reach its socket?)"
[[ "$state" == active* ]] || fail "this Docker engine is not in swarm mode (state: ${state%% *});" \
  "docs/load-swarm.md shows a 'docker swarm init'"
[[ "$state" == *true ]] ||
  fail "this node is a swarm worker: run it on a manager (docker node ls there)"
node_id=$(docker info --format '{{.Swarm.NodeID}}')

timeout 20 docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image here: build it" \
  "(docker build -f deploy/Dockerfile -t $image .) or pass --image"
# An image only built here has no registry digest: asking a registry for one only prints a warning.
resolve=()
[[ "$(docker image inspect --format '{{len .RepoDigests}}' "$image")" == 0 ]] &&
  resolve=(--no-resolve-image)
# An image built before the worker flags would fail in every task; say so once, here.
timeout 60 docker run --rm --network host "$image" load --help 2>/dev/null |
  grep -q -- '--worker-index' ||
  fail "$image's switchyard has no 'load --worker-index': rebuild the image from a current checkout"

results="${results:-$PWD/swarm-load-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$results"
results=$(cd "$results" && pwd -P)  # the bind mount needs an absolute path
compgen -G "$results/worker-*.json" >/dev/null &&
  fail "$results already holds worker-*.json from another run: give an empty --results"
# The tasks run as the caller, so the results are the caller's files and need no chmod.
user="$(id -u):$(id -g)"

# The trap removes only services this run created: a name already taken is an error, not a
# service to take over (or to remove at the end).
for service in "$name" ${serve_model:+"$name-server"}; do
  ! docker service inspect "$service" >/dev/null 2>&1 || fail "a service $service exists already" \
    "(a run stopped by SIGKILL? docker service rm $service), or pass another --name"
done
services=()
cleanup() {
  local i
  # Newest first: the load tasks go before the server they load.
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do
    timeout 60 docker service rm "${services[i]}" >/dev/null 2>&1 ||
      say "could not remove service ${services[i]}"
  done
  ((${#services[@]} == 0)) || say "removed the services it created: ${services[*]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ping_server() {  # true when something at host:port answers PING with +PONG
  # shellcheck disable=SC2016  # $0 and $1 expand in the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && head -c 5 <&3' \
    "$host" "$port" 2>/dev/null | grep -q '^+PONG'
}

if [[ -n "$serve_model" ]]; then
  ping_server &&
    fail "something already answers at $host:$port: stop it, or drop --serve to load it"
  # On this node (where the script can check it), on the host network, as the image's own user.
  docker service create --detach --quiet --name "$name-server" --mode replicated --replicas 1 \
    --restart-condition none --network host --constraint "node.id==$node_id" "${resolve[@]}" \
    "$image" \
    serve --model "$serve_model" --bind "$host" --port "$port" --metrics-port "$metrics_port" \
    >/dev/null
  services+=("$name-server")
  deadline=$(($(date +%s) + 60))
  until ping_server; do
    if (($(date +%s) >= deadline)); then
      docker service logs --raw "$name-server" 2>&1 | tail -20 >&2
      fail "the $serve_model server did not answer PING at $host:$port within 60 s (its logs above)"
    fi
    sleep 1
  done
  say "server: $serve_model at $host:$port (service $name-server, metrics on port $metrics_port)"
else
  ping_server ||
    fail "no server answers PING at $host:$port from here: start one, or pass --serve MODEL"
fi

start_epoch=$(($(date +%s) + start_in))
start_at=$(date -u -d "@$start_epoch" +%Y-%m-%dT%H:%M:%SZ)
worker_flags=(--host "$host" --port "$port" --workers "$workers" --start-at "$start_at" --quiet)
[[ -n "$run_id" ]] && worker_flags+=(--run-id "$run_id")

# Each task's index is its slot. A replicated job numbers its tasks' slots from 0, and the
# {{.Task.Slot}} template renders slot 0 as the node's ID (as for a global service, whose tasks have
# no slot), so anything not a number is worker 0. An engine that numbered them from 1 would make the
# last task's --worker-index N, which switchyard load refuses: a loud failure, not a wrong merge.
# shellcheck disable=SC2016  # expanded by the task's shell, not here
entry='slot="$SWITCHYARD_SLOT"
case "$slot" in ""|*[!0-9]*) slot=0 ;; esac
exec switchyard load "$@" --worker-index "$slot" --json "/results/worker-$slot.json"'
say "starting $workers load tasks (service $name, image $image); they begin at $start_at"
docker service create --detach --quiet --name "$name" --mode replicated-job \
  --replicas "$workers" --max-concurrent "$workers" --restart-condition none --network host \
  --placement-pref spread=node.id "${constraints[@]}" "${resolve[@]}" --user "$user" \
  --env 'SWITCHYARD_SLOT={{.Task.Slot}}' --hostname "$name-{{.Task.Slot}}" \
  --mount "type=bind,source=$results,target=/results" \
  --entrypoint /bin/sh "$image" -c "$entry" worker "${worker_flags[@]}" "${load_args[@]}" >/dev/null
services+=("$name")

task_states() {  # one line a task: slot state exit-code error
  local ids
  ids=$(docker service ps --quiet --no-trunc "$name" 2>/dev/null) || return 0
  [[ -z "$ids" ]] && return 0
  # A task not started yet has no container status: `with` skips it where a field path would fail
  # (and the CLI would retry the template on the raw JSON, which omits a slot of 0).
  local format='{{.Slot}} {{.Status.State}}'
  format+=' {{with .Status.ContainerStatus}}{{.ExitCode}}{{else}}-{{end}} {{.Status.Err}}'
  # shellcheck disable=SC2086  # one argument per task id
  docker inspect --format "$format" $ids 2>/dev/null || true
}
show_failure() {
  say "tasks (slot state exit-code error):"
  task_states | sed 's/^/  /' >&2
  say "logs of the load tasks (docker service logs $name):"
  timeout 30 docker service logs --no-trunc "$name" 2>&1 | tail -40 | sed 's/^/  /' >&2
  fail "$1"
}

# Until every task has ended, bounded by --start-at plus --timeout. The first task to fail ends
# the run: its siblings' results would not merge without it, and a rerun would not help (Docker
# 20.10 reran a failed job slot at once, --restart-condition none notwithstanding, and a worker
# rerun after --start-at fails as late).
deadline=$((start_epoch + timeout_s))
warned_late=0
while :; do
  states=$(task_states)
  ended=$(grep -cE '^[^ ]+ (complete|failed|rejected|shutdown|orphaned|remove)' <<<"$states" ||
    true)
  if grep -qE '^[^ ]+ (failed|rejected|shutdown|orphaned|remove)' <<<"$states" ||
     grep -qE '^[^ ]+ complete [1-9]' <<<"$states"; then
    show_failure "a load task failed"
  fi
  ((ended == workers)) && break
  now=$(date +%s)
  if ((now >= start_epoch && !warned_late)) &&
     grep -qE '^[^ ]+ (new|pending|assigned|accepted|preparing|ready|starting)' <<<"$states"; then
    say "a task was not running yet at $start_at: it will fail as late (a larger --start-in helps)"
    warned_late=1
  fi
  ((now < deadline)) ||
    show_failure "the tasks did not all end within --timeout ${timeout_s} s of $start_at"
  sleep 2
done
slots=$(cut -d' ' -f1 <<<"$states" | sort -n | paste -sd' ')
say "every load task completed (slots $slots); results in $results"

parts=()
for ((i = 0; i < workers; i++)); do
  [[ -s "$results/worker-$i.json" ]] ||
    fail "no $results/worker-$i.json although its task completed:" \
      "on a multi-node swarm, --results must be one directory shared by every node"
  parts+=("/results/worker-$i.json")
done
# The merge runs in the image too, so this machine needs no switchyard of its own.
timeout 120 docker run --rm --network host --user "$user" \
  --mount "type=bind,source=$results,target=/results" "$image" \
  load merge --json /results/merged.json "${parts[@]}" ||
  fail "switchyard load merge refused the results (its message above)"
say "merged $workers workers: $results/merged.json"
