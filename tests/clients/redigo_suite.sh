#!/usr/bin/env bash
# Runs a real client's own test suite, kept outside the project, against Switchyard: redigo's
# tests as Debian ships them (golang-github-gomodule-redigo-dev 1.8.3, under
# /usr/share/gocode/src/github.com/gomodule/redigo/redis/), unmodified, against redis-server (the
# reference) and then against each model.
#
# redigo's tests start their server themselves: `-redis-server PATH` is run with
# `--port P --bind A --save "" --appendonly no`, must print a line containing
# " * Ready to accept connections", and is stopped with SIGINT (see its test_test.go). This
# script is that PATH too: run with REDIGO_SUITE_SERVE set, it is a wrapper that starts
# `switchyard serve --model M --bind A --port P`, prints the line once the server is ready and
# forwards SIGINT/SIGTERM to it (or, for the reference, execs redis-server with the arguments as
# given).
#
# The selection (SELECTED below) is redigo's tests that reach the server and need nothing we do
# not serve: the protocol, dialing, the connection pool, and string and integer commands. Every
# other test of the package is listed in EXCLUDED with the feature that keeps it out.
#
# Usage: tests/clients/redigo_suite.sh [--switchyard BIN] [--models all|M,M...] [--no-reference]
#                                      [--redis-server PATH] [--timeout SECONDS] [--all]
#   --switchyard   the binary (default: build/release/cli/switchyard beside this checkout)
#   --models       comma-separated, or all (the default: every RESP model the binary lists with
#                  `serve --list-models`)
#   --no-reference skip the redis-server run; --models none runs the reference alone
#   --timeout      go test's -timeout for one target (default 60; the run is killed 15 s later)
#   --all          run every test of the package that reaches a server, excluded ones too (to see
#                  what the exclusions cost); the closing count then covers them too
# Needs: golang-go golang-github-gomodule-redigo-dev golang-github-stretchr-testify-dev
# (testify: one of redigo's test files imports it), redis-server. Builds offline, in GOPATH mode.
# Ends with a per-target table and "N passed, N failed"; exits 0 only if all passed.
set -uo pipefail

# --- wrapper mode: this script as redigo's -redis-server ---------------------------------------
if [[ -n "${REDIGO_SUITE_SERVE:-}" ]]; then
  pids_file="${REDIGO_SUITE_PIDS:?}"
  if [[ "$REDIGO_SUITE_SERVE" == redis:* ]]; then
    echo "$$" >>"$pids_file"  # exec keeps the pid: the suite can always find and stop it
    exec "${REDIGO_SUITE_SERVE#redis:}" "$@"
  fi
  model="$REDIGO_SUITE_SERVE"
  port="" bind="127.0.0.1"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --bind) bind="$2"; shift 2 ;;
      *) shift ;;  # --save "" --appendonly no: nothing to persist here anyway
    esac
  done
  log="$(mktemp)"
  set -m  # the server in a process group of its own (pgid = its pid): a kill of the group stops
          # it and anything it started, and nothing else
  "${REDIGO_SUITE_SWITCHYARD:?}" serve --model "$model" --bind "$bind" --port "${port:?}" \
    --metrics-port 0 --quiet >"$log" 2>&1 &
  pid=$!
  echo "$$" >>"$pids_file"
  echo "$pid" >>"$pids_file"
  trap 'kill -INT "$pid" 2>/dev/null' INT
  trap 'kill -TERM "$pid" 2>/dev/null' TERM
  ready=0
  for _ in $(seq 200); do  # 10 s, as long as redigo waits for the line
    if grep -q "switchyard ready" "$log"; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ $ready -eq 0 ]]; then
    kill -KILL -- "-$pid" 2>/dev/null
    cat "$log"; rm -f "$log"
    echo "switchyard serve --model $model did not get ready"  # the last line: redigo reports it
    exit 1
  fi
  cat "$log"
  rm -f "$log"
  echo "$$:M $(date '+%d %b %Y %H:%M:%S') * Ready to accept connections"
  status=0
  while true; do  # wait returns early when a trapped signal arrives; go on until the server exits
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  exit "$status"
fi

# --- the suite ---------------------------------------------------------------------------------
# Tests of the package that reach the server and need no unsupported feature.
SELECTED=(
  TestRecvBeforeSend        # Receive waiting before Send: a pipelined PING
  TestError                 # an error reply leaves the connection usable (HSET on a string key:
                            # WRONGTYPE on redis-server, unknown command on ours: both errors)
  TestDialClientName        # DialClientName's CLIENT SETNAME at dial, then CLIENT GETNAME
  TestDialContext_CanceledContext
  TestPoolReuse TestPoolMaxIdle TestPoolError TestPoolClose TestPoolClosedConn
  TestPoolIdleTimeout TestPoolMaxLifetime TestPoolConcurrenSendReceive TestPoolBorrowCheck
  TestPoolMaxActive TestPoolWaitStats TestWaitPool TestWaitPoolClose TestWaitPoolCommandError
  TestWaitPoolDialError TestLocking_TestOnBorrowFails_PoolDoesntCrash TestWaitPoolGetContext
  TestWaitPoolGetContextIssue520 TestWaitPoolGetContextWithDialContext
  TestPoolGetContext_DialContext_CanceledContext TestWaitPoolGetCanceledContext
  ExampleBool               # SET, EXISTS
  ExampleInt                # SET, GET, INCR
  ExampleString             # SET, GET
)
# name: why it is left out. The ones marked "no server" never reach one (fake connections or a
# listener of their own): the same result against any target, so they tell nothing about ours.
EXCLUDED=(
  "TestDoCommands: lists (LPUSH, LRANGE) and MULTI/EXEC in its command table"
  "TestPipelineCommands: lists (LPUSH, LRANGE) and MULTI/EXEC (the same table, pipelined)"
  "TestBlankCommand: lists (LPUSH, LRANGE) and MULTI/EXEC (the same table, Do(\"\"))"
  "TestExecError: MULTI/EXEC, sorted sets (ZADD, ZINCRBY), hashes (HSET)"
  "TestPoolTransactionCleanup: WATCH/UNWATCH, MULTI/EXEC/DISCARD"
  "TestPoolPubSubCleanup: pub/sub (SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE)"
  "TestPushed: pub/sub (SUBSCRIBE, PSUBSCRIBE, PUBLISH)"
  "ExamplePubSubConn: pub/sub (SUBSCRIBE, PUBLISH)"
  "TestPoolMonitorCleanup: MONITOR"
  "TestScript: Lua scripts (EVAL, EVALSHA, SCRIPT LOAD)"
  "TestSlowLog: SLOWLOG, CONFIG SET (where CONFIG GET lacks the parameter, it passes untested)"
  "ExampleInts: sets (SADD, SMEMBERS)"
  "ExampleScan: hashes (HMSET), lists (LPUSH), SORT ... BY ... GET"
  "ExampleScanSlice: hashes (HMSET), lists (LPUSH), SORT ... BY ... GET"
  "ExampleArgs: hashes (HMSET, HGETALL)"
  "Example_zpop: sorted sets (ZADD, ZRANGE, ZREM), WATCH/MULTI/EXEC"
  "TestDialUseTLS: no server (TLS, on a fake connection)"
  "TestDialURLTLS: no server (TLS, on a fake connection)"
  "TestDialTLSHandshakeTimeout: no server (TLS, its own listener)"
  "TestDialTLSSKipVerify: no server (TLS, on a fake connection)"
  "TestDialUseACL: no server (ACL's AUTH user pass, on a fake connection)"
  "TestWrite: no server (the request encoder)"
  "TestRead: no server (the reply parser)"
  "TestReadString: no server (the reply parser)"
  "TestReadTimeout: no server (its own listener)"
  "TestLookupCommandInfo: no server"
  "TestPoolList: no server"
  "TestDialContextFunc: no server"
  "TestDialURL: no server (a fake connection)"
  "TestDialURLErrors: no server"
  "TestDialURLHost: no server"
  "TestDialURLPort: no server"
  "TestWithTimeout: no server (a fake connection)"
  "TestConnTimeout: no server"
  "TestPoolConnTimeout: no server"
  "TestPoolGetContext_DialContext: no server (a fake connection)"
  "TestWaitPoolGetAfterClose: no server (the pool is closed before it dials)"
  "TestReply: no server"
  "TestScanConversion: no server"
  "TestScanConversionError: no server"
  "TestScanStruct: no server"
  "TestBadScanStructArgs: no server"
  "TestScanSlice: no server"
  "TestArgs: no server"
  "TestScanPtrRedisScan: no server"
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
switchyard="$here/../../build/release/cli/switchyard"
models_arg="all"
reference=1
redis_server="$(command -v redis-server || echo /usr/bin/redis-server)"
go_timeout=60
run_all=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --switchyard) switchyard="$2"; shift 2 ;;
    --models) models_arg="$2"; shift 2 ;;
    --no-reference) reference=0; shift ;;
    --redis-server) redis_server="$2"; shift 2 ;;
    --timeout) go_timeout="$2"; shift 2 ;;
    --all) run_all=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$models_arg" in
  all)
    # Every RESP model of the registry, as the binary lists it (name, protocol, ... a line).
    if [[ ! -x "$switchyard" ]]; then
      echo "no switchyard binary at $switchyard (build it, or pass --switchyard)" >&2
      exit 1
    fi
    mapfile -t models < <("$switchyard" serve --list-models --format=tsv |
      awk -F'\t' '$2 == "resp" {print $1}')
    if ((${#models[@]} == 0)); then
      echo "$switchyard serve --list-models lists no RESP model" >&2
      exit 1
    fi
    ;;
  none) models=() ;;
  *) IFS=, read -ra models <<<"$models_arg" ;;
esac

package=github.com/gomodule/redigo/redis
gocode=/usr/share/gocode
missing=()
command -v go >/dev/null || missing+=(golang-go)
[[ -d "$gocode/src/$package" ]] || missing+=(golang-github-gomodule-redigo-dev)
[[ -d "$gocode/src/github.com/stretchr/testify/require" ]] ||
  missing+=(golang-github-stretchr-testify-dev)
[[ -x "$redis_server" ]] || missing+=(redis-server)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "missing: apt-get install ${missing[*]}" >&2
  exit 1
fi
if [[ $reference -eq 0 && ${#models[@]} -eq 0 ]]; then
  echo "nothing to run: --no-reference with --models none" >&2
  exit 2
fi
if [[ ${#models[@]} -gt 0 && ! -x "$switchyard" ]]; then
  echo "no switchyard binary at $switchyard (build it, or pass --switchyard)" >&2
  exit 1
fi
switchyard="$(readlink -f "$switchyard")"
redis_server_exe="$(readlink -f "$redis_server")"

work="$(mktemp -d)"
pids_file="$work/server-pids"
touch "$pids_file"
go_pid=""
# A recorded pid is signalled only while it is still ours, not a pid reused since: the switchyard
# or redis-server binary we started (by its executable or its command line), or a wrapper run
# from $work.
ours() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  [[ "$exe" == "$switchyard" || "$exe" == "$redis_server_exe" ]] ||
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -e "$work/" -e "$switchyard "
}
# Stops the wrappers and servers the runs wrote down (a go test killed by its timeout does not
# stop its server), then forgets them. A switchyard server leads a process group of its own (the
# wrapper's set -m): the group goes too.
stop_recorded() {
  local pid alive=0
  while read -r pid; do
    if ours "$pid"; then kill -TERM "$pid" 2>/dev/null && alive=1; fi
  done <"$pids_file"
  if [[ $alive -eq 1 ]]; then
    sleep 1
    while read -r pid; do
      if ours "$pid"; then kill -KILL -- "-$pid" "$pid" 2>/dev/null; fi
    done <"$pids_file"
  fi
  : >"$pids_file"
}
cleanup() {
  [[ -n "$go_pid" ]] && kill -KILL "$go_pid" 2>/dev/null
  stop_recorded
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The wrapper is this very script, copied so that it is executable whatever its mode in the tree.
cp "${BASH_SOURCE[0]}" "$work/server-wrapper"
chmod +x "$work/server-wrapper"

# Build redigo's test binary once, offline: GOPATH mode over Debian's /usr/share/gocode.
export GO111MODULE=off GOPATH="$gocode" GOFLAGS="" GOTOOLCHAIN=local GOPROXY=off
if [[ -z "$(go env GOCACHE 2>/dev/null)" || "$(go env GOCACHE 2>/dev/null)" == off ]]; then
  export GOCACHE="$work/gocache"  # no HOME: a cache for this run only
fi
echo "building redigo's tests ($package from $gocode, $(go version | cut -d' ' -f3))"
if ! go test -c -o "$work/redigo.test" "$package"; then
  echo "go test -c failed" >&2
  exit 1
fi

# Every test of the package must be classified: a new one (a newer Debian package) is reported.
mapfile -t listed < <("$work/redigo.test" -test.list '.*' | grep -E '^(Test|Example)')
declare -A known=()
for name in "${SELECTED[@]}"; do known[$name]=selected; done
for entry in "${EXCLUDED[@]}"; do known[${entry%%:*}]=excluded; done
unclassified=()
for name in "${listed[@]}"; do [[ -n "${known[$name]:-}" ]] || unclassified+=("$name"); done
[[ ${#unclassified[@]} -gt 0 ]] && echo "note: tests in neither list (not run): ${unclassified[*]}"

run=("${SELECTED[@]}")
if [[ $run_all -eq 1 ]]; then
  for entry in "${EXCLUDED[@]}"; do
    [[ "$entry" == *": no server"* ]] || run+=("${entry%%:*}")
  done
fi
pattern="^($(IFS='|'; echo "${run[*]}"))\$"

echo "selected (${#run[@]}): ${run[*]}"
echo "excluded:"
for entry in "${EXCLUDED[@]}"; do
  if [[ $run_all -eq 1 && "$entry" != *": no server"* ]]; then continue; fi
  echo "  $entry"
done

free_port() {
  /usr/bin/python3 -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

targets=()
[[ $reference -eq 1 ]] && targets+=(redis-server)
targets+=("${models[@]}")
declare -A passed_of=() failed_of=() failing_of=()
total_passed=0 total_failed=0
for target in "${targets[@]}"; do
  if [[ "$target" == redis-server ]]; then serve="redis:$redis_server"; else serve="$target"; fi
  port="$(free_port)"
  log="$work/$target.log"
  echo
  echo "=== $target (port $port)"
  REDIGO_SUITE_SERVE="$serve" REDIGO_SUITE_PIDS="$pids_file" REDIGO_SUITE_SWITCHYARD="$switchyard" \
    timeout -k 5 $((go_timeout + 15)) "$work/redigo.test" -test.v -test.count 1 \
    -test.timeout "${go_timeout}s" -test.run "$pattern" \
    -redis-server "$work/server-wrapper" -redis-address 127.0.0.1 -redis-port "$port" \
    -redis-log "$work/$target.server.log" >"$log" 2>&1 &
  go_pid=$!
  wait "$go_pid"
  status=$?
  go_pid=""
  # Whatever the run left (a timeout, a panic): its server goes now, before the next target.
  stop_recorded
  # Top-level results only (subtests are indented). A selected test with no line did not run to
  # its end (a panic, the timeout): failed.
  declare -A result=()
  while read -r verdict name; do result[$name]=$verdict; done < <(
    sed -nE 's/^--- (PASS|FAIL|SKIP): ([A-Za-z0-9_]+) .*/\1 \2/p' "$log")
  passed=0 failing=()
  for name in "${run[@]}"; do
    case "${result[$name]:-}" in
      PASS) passed=$((passed + 1)) ;;
      FAIL) failing+=("$name") ;;
      *) failing+=("$name(not-run)") ;;
    esac
  done
  unset result
  # The failures as go test printed them, to read without rerunning.
  awk 'after { print; after = 0; next }
       /^(got|want):$/ { print; after = 1; next }
       /^[ \t]+[a-z_]+_test\.go:[0-9]+:|^(--- FAIL|panic:|FAIL|ok|PASS)/ { print }' "$log" | head -60
  [[ $status -ne 0 && ${#failing[@]} -eq 0 ]] && failing+=("(go test exited $status)")
  if [[ ${#failing[@]} -gt 0 && "$target" != redis-server ]]; then
    echo "--- the server's log (the wrapper's stdout):"
    tail -20 "$work/$target.server.log" 2>/dev/null
  fi
  passed_of[$target]=$passed
  failed_of[$target]=${#failing[@]}
  failing_of[$target]="${failing[*]:-}"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + ${#failing[@]}))
done

echo
printf '%-17s %6s  %6s  %s\n' target passed failed "failing tests"
for target in "${targets[@]}"; do
  printf '%-17s %6s  %6s  %s\n' "$target" "${passed_of[$target]}" "${failed_of[$target]}" \
    "${failing_of[$target]}"
done
echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
