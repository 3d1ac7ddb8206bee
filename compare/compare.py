#!/usr/bin/python3
"""switchyard compare: every model through the standard scenarios, and a report.

Runs the switch-cost microbenchmarks, then for each model starts the server, verifies it answers
correctly, runs each scenario (scraping the server's metrics before and after every run, so
switches, CPU and memory are per request and per connection), stops it, and writes
results/<timestamp>/ with report.md, report.html, PNG charts and every raw result as JSON.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402
import report  # noqa: E402
from servers import (RedisServer, Server, ServerError, hold_idle_connections,  # noqa: E402
                     hold_idle_grpc_connections, verify, verify_grpc)

SCENARIOS = ["echo", "getset", "wait", "block", "cpu", "idle"]

# Sizes of each scenario, quick (CI, a first look) and full.
PLAN = {
    # Quick: under two minutes on a 2-core machine, redis-server's reference row included.
    "quick": dict(repeat=1, duration="500ms", warmup="200ms", echo_connections=[1, 512],
                  sweep_steps=4, sweep_runs=1, sweep_precision=10, sweep_retries=1,
                  sweep_peak_runs=2,
                  wait_connections=200,
                  block_rate=2000, idle_counts=[1000], switchcost=["--quick"]),
    # Sized to finish within fifteen minutes on a 2-core machine: each point repeated three times
    # (median and spread), 2 s measured after 0.3 s of warm-up; the sweep climbs in quarters of the
    # peak, its deciding steps run three times (the majority decides), and it bisects the knee to
    # within 5% of the peak.
    "full": dict(repeat=3, duration="2s", warmup="300ms", echo_connections=[1, 10, 100, 1000, 4000],
                 sweep_steps=4, sweep_runs=3, sweep_precision=5, sweep_retries=2,
                 sweep_peak_runs=2,
                 wait_connections=1000,
                 block_rate=5000, idle_counts=[1000, 10000], switchcost=["--runs", "3"]),
}
WAIT_MICROS = 10_000     # scenario 3: a 10 ms downstream call per request
BLOCK_MICROS = 100_000   # scenario 4: a 100 ms blocking call, twice a second
CPU_MICROS = 1_000       # scenario 5: 1 ms of CPU per request
REDIS_LACKS = ("wait", "block", "cpu")  # scenarios that need SY.* commands


class Progress:
    """One line on stderr a step: where we are, how long it has run, about how long is left."""

    def __init__(self, total_steps):
        self.total, self.done, self.started = total_steps, 0, time.monotonic()

    def step(self, what):
        elapsed = time.monotonic() - self.started
        left = (elapsed / self.done * (self.total - self.done)) if self.done else 0
        print(f"[{self.done + 1:3d}/{self.total}  {elapsed:5.0f}s elapsed, ~{left:4.0f}s left] {what}",
              file=sys.stderr, flush=True)
        self.done += 1


class PartlyMeasured(Exception):
    """A scenario that measured some of its points and could not go on: `points` are kept, and
    `what` could not be measured, because of `why`."""

    def __init__(self, points, what, why):
        super().__init__(why)
        self.points, self.what, self.why = points, what, why


def registry(binary):
    """Every model, from the binary's registry (`serve --list-models`), in the order they run:
    {name: protocol}."""
    done = subprocess.run([binary, "serve", "--list-models", "--format=json"], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        sys.exit(f"switchyard compare: {binary} serve --list-models failed: {done.stderr.strip()}")
    return {model["name"]: model["protocol"] for model in json.loads(done.stdout)}


class Runner:
    def __init__(self, args):
        self.args = args
        self.binary = args.binary
        self.protocols = args.protocols
        self.plan = PLAN["quick" if args.quick else "full"]
        cores = os.cpu_count() or 1
        # Server and load generator on different CPUs where there are enough.
        self.server_cpus = "0" if cores >= 2 else None
        self.load_cpus = ",".join(str(c) for c in range(1, cores)) if cores >= 2 else None
        self.out = args.out
        (self.out / "raw").mkdir(parents=True, exist_ok=True)
        self.raw_index = 0
        self.stopping = []  # servers told to stop, not yet waited for

    # -- the load generator ----------------------------------------------------------------
    def speaks_grpc(self, model):
        """A model that speaks kv.proto rather than RESP: the load generator drives it with
        --protocol grpc (the same workload as kv.proto calls; sy.* becomes the Work RPC)."""
        return self.protocols.get(model) == "grpc"

    def protocol_flags(self, model):
        return ["--protocol", "grpc"] if self.speaks_grpc(model) else []

    def load(self, server, flags, name):
        """Runs `switchyard load` against `server` and returns its JSON result (also kept raw)."""
        self.raw_index += 1
        path = self.out / "raw" / f"{self.raw_index:03d}-{server.model}-{name}.json"
        command = [self.binary, "load", *self.protocol_flags(server.model),
                   "--host", "127.0.0.1", "--port", str(server.port), "--threads", "1", "--quiet",
                   "--json", str(path), *flags]
        if self.load_cpus:
            command = ["taskset", "-c", self.load_cpus, *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"load failed ({' '.join(flags)}): {done.stderr.strip()[-300:]}")
        return json.loads(path.read_text())

    def measured(self, server, flags, name):
        """One load run with the server's metrics scraped before and after it."""
        before, started = server.scrape(), time.monotonic()
        result = self.load(server, flags, name)
        after, elapsed = server.scrape(), time.monotonic() - started
        # Protobuf JSON writes 64-bit integers as strings.
        for key in ("requests", "errors", "failed"):
            result[key] = int(result.get(key, 0))
        result["server"] = server_deltas(before, after, result["requests"])
        result["server"]["wall_seconds"] = elapsed
        return result

    def repeated(self, server, flags, name):
        runs = [self.measured(server, flags, name) for _ in range(self.plan["repeat"])]
        return summarize(runs)

    # -- the scenarios -----------------------------------------------------------------------
    def echo(self, server, progress):
        points = []
        for connections in self.plan["echo_connections"]:
            progress.step(f"{server.model} · echo · {connections} connections")
            flags = ["--connections", str(connections), "--mix", "echo:100", "--value-size", "16",
                     "--duration", self.plan["duration"], "--warmup", self.plan["warmup"]]
            try:
                points.append({"connections": connections,
                               **self.repeated(server, flags, f"echo-{connections}")})
            except RuntimeError as e:
                # A model that cannot take this many connections (prefork: its workers plus the
                # listen backlog) keeps the points it did serve; larger counts would fail too.
                raise PartlyMeasured(points, f"echo at {connections} connections and more",
                                     str(e)) from e
        return points

    def getset(self, server, progress):
        progress.step(f"{server.model} · get/set zipfian sweep to the knee (--slo {self.args.slo})")
        flags = ["--connections", "32", "--mix", "get:90,set:10", "--keys", "100000",
                 "--key-dist", "zipfian:0.99", "--value-size", "64", "--sweep", "--slo", self.args.slo,
                 "--sweep-steps", str(self.plan["sweep_steps"]),
                 "--sweep-runs", str(self.plan["sweep_runs"]),
                 "--sweep-peak-runs", str(self.plan["sweep_peak_runs"]),
                 "--sweep-retries", str(self.plan["sweep_retries"]),
                 "--sweep-precision", str(self.plan["sweep_precision"]), "--duration",
                 self.plan["duration"], "--warmup", self.plan["warmup"]]
        return self.load(server, flags, "getset-sweep")

    def wait(self, server, progress):
        connections = self.plan["wait_connections"]
        progress.step(f"{server.model} · SY.WAIT {WAIT_MICROS // 1000} ms × {connections} connections")
        flags = ["--connections", str(connections), "--mix", f"sy.wait:{WAIT_MICROS}",
                 "--duration", self.plan["duration"], "--warmup", self.plan["warmup"]]
        result = self.repeated(server, flags, "wait")
        # Little's law: requests in service at once = throughput × time each spends waiting.
        result["concurrent_waits"] = result["throughput"] * WAIT_MICROS / 1e6
        result["connections"] = connections
        return result

    def block(self, server, progress):
        progress.step(f"{server.model} · fast GETs alone, then beside SY.BLOCK {BLOCK_MICROS // 1000} ms")
        fast = ["--connections", "50", "--rate", str(self.plan["block_rate"]), "--mix", "get:100",
                "--duration", self.plan["duration"], "--warmup", self.plan["warmup"]]
        alone = self.measured(server, fast, "block-baseline")
        # The blocking requests come from a second load generator on one connection of its own.
        blocker_cmd = [self.binary, "load", *self.protocol_flags(server.model),
                       "--host", "127.0.0.1", "--port", str(server.port),
                       "--connections", "1", "--rate", "2", "--mix", f"sy.block:{BLOCK_MICROS}",
                       "--duration", "60s", "--quiet"]
        if self.load_cpus:
            blocker_cmd = ["taskset", "-c", self.load_cpus, *blocker_cmd]
        blocker = subprocess.Popen(blocker_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.2)
            beside = self.measured(server, fast, "block-beside")
        finally:
            blocker.terminate()
            blocker.wait(timeout=30)
        return {"alone": alone, "beside_block": beside}

    def cpu(self, server, progress):
        progress.step(f"{server.model} · SY.CPU {CPU_MICROS} µs, server on every CPU")
        flags = ["--connections", "8", "--mix", f"sy.cpu:{CPU_MICROS}",
                 "--duration", self.plan["duration"], "--warmup", self.plan["warmup"]]
        result = self.repeated(server, flags, "cpu")
        # Over the same span as the CPU time: from the scrape before the run to the one after.
        result["cores_used"] = result["server"]["cpu_seconds"] / result["server"]["wall_seconds"]
        return result

    def idle(self, first_server, progress):
        points = []
        for index, count in enumerate(self.plan["idle_counts"]):
            progress.step(f"{first_server.model} · {count} idle connections")
            # A fresh server for each count: one that served the count before keeps what it
            # allocated then (prefork's workers are touched by the first count, freed thread stacks
            # are cached), so a second count on it would read too little.
            server = first_server if index == 0 else self.start(first_server.model,
                                                                self.server_cpus, "idle")
            try:
                points.append(self.idle_point(server, count))
            finally:
                if server is not first_server:
                    server.stop()  # waits for its exit: the caller stops only the first
        return points

    def idle_point(self, server, count):
        before = server.scrape()
        if self.speaks_grpc(server.model):
            # gRPC connections held by the load generator itself: each a READY channel that
            # made one call, as each RESP connection below answered one PING.
            with hold_idle_grpc_connections(self.binary, server.port, count, self.load_cpus,
                                            timeout=30) as (opened, answered):
                time.sleep(0.5)  # let the server settle what it allocated for them
                after = server.scrape()
        else:
            sockets, answered = hold_idle_connections(server.port, count, timeout=5)
            opened = len(sockets)
            time.sleep(0.5)  # let the server settle what it allocated for them
            after = server.scrape()
            for conn in sockets:
                conn.close()
        pss = after.get('switchyard_memory_bytes{kind="pss"}', 0) - before.get(
            'switchyard_memory_bytes{kind="pss"}', 0)
        rss = after.get('switchyard_memory_bytes{kind="rss"}', 0) - before.get(
            'switchyard_memory_bytes{kind="rss"}', 0)
        # Per connection served: one left waiting in the backlog costs the server nothing.
        served = max(1, answered)
        return {"connections": count, "opened": opened, "answered": answered,
                "pss_bytes_per_connection": pss / served,
                "rss_bytes_per_connection": rss / served,
                "os_threads": after.get("switchyard_os_threads", 0),
                "os_processes": after.get("switchyard_os_processes", 0)}

    # -- one model ---------------------------------------------------------------------------
    def server_flags(self, scenario):
        flags = ["--max-clients", "20000"]
        if scenario != "cpu" and self.server_cpus:
            flags += ["--threads", "1"]  # one event loop a CPU the server has
        return flags

    def start(self, model, cpus, scenario):
        if model == "redis":
            return RedisServer(cpus)
        return Server(self.binary, model, cpus, self.server_flags(scenario))

    def run_model(self, model, scenarios, progress):
        outcome = {"model": model, "scenarios": {}, "skipped": {}}
        try:
            self.run_scenarios(model, scenarios, progress, outcome, self.stopping)
        finally:
            # Servers still exiting go on doing so, idle, while the next model runs.
            self.stopping = [s for s in self.stopping if s.process.poll() is None]
        return outcome

    def stop_all(self):
        for server in self.stopping:
            server.stop()  # waits for the exit (SIGKILL after 20 s)
        self.stopping = []

    def run_scenarios(self, model, scenarios, progress, outcome, stopping):
        for scenario in scenarios:
            if model == "redis" and scenario in REDIS_LACKS:
                outcome["skipped"][scenario] = "redis-server has no simulated-work commands"
                continue
            # A fresh server for each scenario, so one scenario's leftovers never bias the next.
            cpus = None if scenario == "cpu" else self.server_cpus
            try:
                server = self.start(model, cpus, scenario)
            except (ServerError, OSError) as e:
                outcome["skipped"][scenario] = str(e)
                continue
            # Stopped without waiting for its exit (stop_soon): it is idle by then, so the next
            # scenario's figures are not disturbed, and the run is shorter by its exit time.
            stopping.append(server)
            try:
                problem = (verify_grpc(self.binary, server) if self.speaks_grpc(model)
                           else verify(server.port))
                if problem:
                    outcome["skipped"]["all"] = f"failed verification: {problem}"
                    return
                outcome["scenarios"][scenario] = getattr(self, scenario)(server, progress)
            except PartlyMeasured as e:
                outcome["scenarios"][scenario] = e.points
                outcome["skipped"][e.what] = e.why
            except (ServerError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                outcome["skipped"][scenario] = str(e)
            finally:
                server.stop_soon()


def server_deltas(before, after, requests):
    """What the server did during one run, from two scrapes: totals and per request."""
    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    served = sum(delta(k) for k in after if k.startswith("switchyard_requests_total"))
    per = max(1.0, served or float(requests))
    out = {
        "requests": served,
        "voluntary_switches": delta('switchyard_os_context_switches_total{kind="voluntary"}'),
        "involuntary_switches": delta('switchyard_os_context_switches_total{kind="involuntary"}'),
        "user_switches": delta("switchyard_user_switches_total"),
        "cpu_seconds": delta('switchyard_cpu_seconds_total{mode="user"}') +
                       delta('switchyard_cpu_seconds_total{mode="system"}'),
        "run_queue_wait_seconds": delta("switchyard_run_queue_wait_seconds_total"),
        "pss_bytes": after.get('switchyard_memory_bytes{kind="pss"}', 0),
        "os_threads": after.get("switchyard_os_threads", 0),
        "os_processes": after.get("switchyard_os_processes", 0),
    }
    for key in ["voluntary_switches", "involuntary_switches", "user_switches", "cpu_seconds",
                "run_queue_wait_seconds"]:
        out[key + "_per_request"] = out[key] / per
    return out


def summarize(runs):
    """The median run's figures, with the spread (min and max) of the headline ones."""
    runs = sorted(runs, key=lambda r: r.get("throughput", 0))
    median = dict(runs[len(runs) // 2])
    median["repeats"] = len(runs)
    median["spread"] = {
        "throughput": [runs[0].get("throughput", 0), runs[-1].get("throughput", 0)],
        "p99": [min(r["latency"]["p99"] for r in runs), max(r["latency"]["p99"] for r in runs)],
    }
    median["throughput_median"] = statistics.median(r.get("throughput", 0) for r in runs)
    return median


def run_switchcost(runner, progress):
    progress.step("switch-cost microbenchmarks")
    path = runner.out / "raw" / "switchcost.json"
    command = [runner.binary, "switchcost", "--json", str(path), *runner.plan["switchcost"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not path.exists():
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    return json.loads(path.read_text())


def main():
    parser = argparse.ArgumentParser(prog="switchyard compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one run a point: under two minutes (CI, a first look)")
    parser.add_argument("--models",
                        help="comma-separated models to run (default: every model "
                             "`switchyard serve --list-models` lists)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--no-redis", action="store_true",
                        help="leave out redis-server, the reference row measured in the same run "
                             "under the same load (by default it runs wherever it is installed)")
    parser.add_argument("--slo", default="99:10ms",
                        help="the getset sweep's objective, PERCENTILE:LATENCY (default 99:10ms: "
                             "above the millisecond stalls a shared VM gives every server, "
                             "redis-server included, so the knee is where the server queues)")
    parser.add_argument("--results", default="results", help="where results/<timestamp>/ goes")
    parser.add_argument("--no-switchcost", action="store_true", help="skip the microbenchmarks")
    args = parser.parse_args()

    args.protocols = registry(args.binary)
    models = [m for m in (args.models or ",".join(args.protocols)).split(",") if m]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for name, allowed in (("model", list(args.protocols)), ("scenario", SCENARIOS)):
        chosen = models if name == "model" else scenarios
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            parser.error(f"unknown {name} {', '.join(unknown)} (choose from {', '.join(allowed)})")

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = Path(args.results) / stamp
    runner = Runner(args)
    plan = runner.plan
    # redis-server, measured in the same run under the same load, is the ruler: how much of a tail
    # is the machine's and how much the model's. It runs the scenarios it can serve.
    with_redis = not args.no_redis and shutil.which("redis-server") is not None
    if not args.no_redis and not with_redis:
        print("switchyard compare: redis-server is not installed, so there is no reference row "
              "(apt-get install redis-server)", file=sys.stderr)
    rows = (["redis"] if with_redis else []) + list(models)

    def steps_of(model):
        return sum({"echo": len(plan["echo_connections"]), "idle": len(plan["idle_counts"])}
                   .get(s, 1) for s in scenarios if not (model == "redis" and s in REDIS_LACKS))
    progress = Progress(sum(steps_of(m) for m in rows) + (0 if args.no_switchcost else 1))

    results = {"machine": machine.describe(args.binary), "quick": args.quick,
               "pinning": {"server": runner.server_cpus, "load": runner.load_cpus},
               "started": stamp, "models": []}
    if not args.no_switchcost:
        results["switchcost"] = run_switchcost(runner, progress)
    try:
        for model in rows:
            results["models"].append(runner.run_model(model, scenarios, progress))
    finally:
        runner.stop_all()
    results["elapsed_seconds"] = round(time.monotonic() - progress.started, 1)

    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    report.write(results, args.out)
    latest = Path(args.results) / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(stamp)
    print(f"report: {args.out / 'report.md'} and report.html "
          f"({results['elapsed_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
