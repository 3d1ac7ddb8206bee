"""switchyard compare: every model through the standard scenarios, and a report.

Runs the switch-cost microbenchmarks, then for each model starts the server, verifies it answers
correctly, runs each scenario (scraping the server's metrics before and after every run, so
switches, CPU and memory are per request and per connection), stops it, and writes
results/<timestamp>/ with report.md, report.html, PNG charts and every raw result as JSON.
"""

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from . import loadgen, machine, report
from .scenarios import BY_NAME, DEFAULT_SLO, PLANS, SCENARIOS, PartlyMeasured
from .servers import RedisServer, Server, ServerError, verify, verify_grpc


class Progress:
    """One line on stderr a step: where we are, how long it has run, about how long is left."""

    def __init__(self, total_steps):
        self.total, self.done, self.started = total_steps, 0, time.monotonic()

    def step(self, what):
        elapsed = time.monotonic() - self.started
        left = (elapsed / self.done * (self.total - self.done)) if self.done else 0
        print(f"[{self.done + 1:3d}/{self.total}  {elapsed:5.0f}s elapsed, ~{left:4.0f}s left] "
              f"{what}", file=sys.stderr, flush=True)
        self.done += 1


def registry(binary):
    """Every model, from the binary's registry (`serve --list-models`), in the order they run:
    {name: what the registry says of it (protocol, runtime, what an idle connection is made of)}."""
    done = subprocess.run([binary, "serve", "--list-models", "--format=json"], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        sys.exit(f"switchyard compare: {binary} serve --list-models failed: {done.stderr.strip()}")
    return {model["name"]: model for model in json.loads(done.stdout)}


class Runner:
    """Runs the scenarios of one comparison: starts each server, verifies it, lets the scenario
    measure it through `load`, `measured`, `repeated` and `start_load`, and stops it."""

    def __init__(self, args):
        self.args = args
        self.binary = args.binary
        self.registry = args.registry
        self.protocols = {name: model["protocol"] for name, model in args.registry.items()}
        self.plan = dataclasses.replace(PLANS["quick" if args.quick else "full"], slo=args.slo)
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

    def protocol(self, model):
        return "grpc" if self.speaks_grpc(model) else "resp"

    def load(self, server, flags, name):
        """Runs `switchyard load` against `server` and returns its JSON result (also kept raw)."""
        self.raw_index += 1
        path = self.out / "raw" / f"{self.raw_index:03d}-{server.model}-{name}.json"
        result = loadgen.run(self.binary, server.port, flags, path,
                             protocol=self.protocol(server.model), cpus=self.load_cpus)
        result["raw"] = str(path.relative_to(self.out))
        return without_buckets(result)

    def start_load(self, server, flags):
        """A load beside the measured one (the blocking scenario's blocker); the caller ends it."""
        return loadgen.start(self.binary, server.port, flags, protocol=self.protocol(server.model),
                             cpus=self.load_cpus)

    def measured(self, server, flags, name):
        """One load run with the server's metrics scraped before and after it."""
        before, started = server.scrape(), time.monotonic()
        result = self.load(server, flags, name)
        after, elapsed = server.scrape(), time.monotonic() - started
        result["server"] = server_deltas(before, after, result["requests"])
        result["server"]["wall_seconds"] = elapsed
        return result

    def repeated(self, server, flags, name):
        runs = [self.measured(server, flags, name) for _ in range(self.plan.repeat)]
        return summarize(runs)

    # -- one model ---------------------------------------------------------------------------
    def start(self, model, scenario):
        """A fresh server for `scenario`: on CPU 0 with one event loop where the machine has CPUs
        for the load generator too, unless the scenario wants every CPU."""
        cpus = None if scenario.server_on_every_cpu else self.server_cpus
        if model == "redis":
            return RedisServer(cpus)
        flags = ["--max-clients", "20000"]
        if cpus:
            flags += ["--threads", "1"]  # one event loop a CPU the server has
        return Server(self.binary, model, cpus, flags)

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
            if model == "redis" and not scenario.redis:
                outcome["skipped"][scenario.name] = "redis-server has no simulated-work commands"
                continue
            # A fresh server for each scenario, so one scenario's leftovers never bias the next.
            try:
                server = self.start(model, scenario)
            except (ServerError, OSError) as e:
                outcome["skipped"][scenario.name] = str(e)
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
                outcome["scenarios"][scenario.name] = scenario.measure(self, server, progress)
            except PartlyMeasured as e:
                outcome["scenarios"][scenario.name] = e.points
                outcome["skipped"][e.what] = e.why
            except (ServerError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                outcome["skipped"][scenario.name] = str(e)
            finally:
                server.stop_soon()


def without_buckets(result):
    """A load result without its histograms' buckets (their counts, min, max and sum stay): the
    report reads none of them, and a quick run's buckets alone made results.json 70 MB, seconds to
    write and read. The raw file (result["raw"]) keeps every run whole, buckets included."""
    if isinstance(result, dict):
        return {key: ({k: v for k, v in value.items() if k != "buckets"}
                      if key.startswith("histogram") and isinstance(value, dict)
                      else without_buckets(value))
                for key, value in result.items()}
    if isinstance(result, list):
        return [without_buckets(item) for item in result]
    return result


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
    command = [runner.binary, "switchcost", "--json", str(path), *runner.plan.switchcost]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not path.exists():
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    return json.loads(path.read_text())


def main():
    parser = argparse.ArgumentParser(prog="switchyard compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one run a point: about two and a half minutes on "
                             "2 cores with every model (CI, a first look)")
    parser.add_argument("--models",
                        help="comma-separated models to run (default: every model "
                             "`switchyard serve --list-models` lists)")
    names = [scenario.name for scenario in SCENARIOS]
    parser.add_argument("--scenarios", default=",".join(names),
                        help="comma-separated scenarios: " + ", ".join(names))
    parser.add_argument("--no-redis", action="store_true",
                        help="leave out redis-server, the reference row measured in the same run "
                             "under the same load (by default it runs wherever it is installed)")
    parser.add_argument("--slo", default=DEFAULT_SLO,
                        help="the getset sweep's objective, PERCENTILE:LATENCY "
                             f"(default {DEFAULT_SLO}: "
                             "above the millisecond stalls a shared VM gives every server, "
                             "redis-server included, so the knee is where the server queues)")
    parser.add_argument("--results", default="results", help="where results/<timestamp>/ goes")
    parser.add_argument("--no-switchcost", action="store_true", help="skip the microbenchmarks")
    args = parser.parse_args()

    args.registry = registry(args.binary)
    models = [m for m in (args.models or ",".join(args.registry)).split(",") if m]
    chosen_scenarios = [s for s in args.scenarios.split(",") if s]
    for name, allowed in (("model", list(args.registry)), ("scenario", names)):
        chosen = models if name == "model" else chosen_scenarios
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

    scenarios = [BY_NAME[name] for name in chosen_scenarios]

    def steps_of(model):
        return sum(s.steps(plan) for s in scenarios if model != "redis" or s.redis)
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
