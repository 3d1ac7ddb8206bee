"""The standard scenarios, one declaration each: its parameters, the `switchyard load` flags built
from them for the quick and the full plan, how it is measured and what its result holds, its title
and the sentences the report's reading says about it, and its fixed-rate runs in the compose
stack's load cycle (deploy/load-cycle.sh, generated from here by deploy/generate.py).

compare.py runs them in the order of SCENARIOS; report.py titles its sections and writes its
reading from them. A new scenario is a new class here and a table for it in report.py.
"""

import time
from dataclasses import dataclass

from . import anatomy, figures
from .servers import hold_idle_connections, hold_idle_grpc_connections

# The getset sweep's objective unless --slo says otherwise: above the millisecond stalls a shared
# VM gives every server, redis-server included, so the knee is where the server queues.
DEFAULT_SLO = "99:10ms"


@dataclass(frozen=True)
class Plan:
    """What every scenario of one run shares: how often each point is measured and for how long."""
    name: str  # "quick" or "full": each scenario's sizes for it
    repeat: int  # runs of each point; the report gives the median and the range
    duration: str
    warmup: str
    switchcost: tuple  # the switch-cost microbenchmarks' own flags
    slo: str = DEFAULT_SLO

    def run_flags(self):
        return ["--duration", self.duration, "--warmup", self.warmup]


PLANS = {
    # Quick: within three minutes on a 2-core machine with every model, the peers and
    # redis-server's reference row: each point run once, 400 ms measured after 150 ms of warm-up.
    "quick": Plan("quick", repeat=1, duration="400ms", warmup="150ms", switchcost=("--quick",)),
    # Sized to finish within twenty minutes on a 2-core machine with every model, the peers and
    # redis-server: each point repeated three times (median and spread), 1 s measured after 0.3 s
    # of warm-up; the sweep (Getset) climbs in quarters of the peak, its deciding steps run three
    # times, and it bisects to within 5%. The microbenchmarks' memory figures stop at 4000 units
    # alive: 10,000 forked processes, three times over, took minutes.
    "full": Plan("full", repeat=3, duration="1s", warmup="300ms",
                 switchcost=("--runs", "3", "--alive", "1000,4000")),
}


class PartlyMeasured(Exception):
    """A scenario that measured some of its points and could not go on: `points` are kept, and
    `what` could not be measured, because of `why`."""

    def __init__(self, points, what, why):
        super().__init__(why)
        self.points, self.what, self.why = points, what, why


class Scenario:
    """What every scenario declares. `measure` gets the runner (compare.py's Runner: its plan, and
    `measured`, `repeated`, `start_load` and `start` to run loads and servers), a freshly started
    and verified server, and the progress line, one `progress.step` a step it counts in `steps`."""
    name = ""
    title = ""
    redis = True  # redis-server serves it: it needs no SY.* command
    server_on_every_cpu = False  # else the server gets CPU 0 and one event loop

    def steps(self, plan):
        return 1

    def loads(self, plan):
        """(name, flags) of every load run it makes, the target's flags left to loadgen.py."""
        raise NotImplementedError

    def measure(self, runner, server, progress):
        raise NotImplementedError

    def summary(self, results):
        """The reading's sentences about this scenario from `results`; none when it did not run."""
        raise NotImplementedError

    def cycle(self):
        """(label, flags) of its runs in the compose stack's load cycle: open loop at rates well
        below what any model serves there, so the dashboards compare what one load costs each."""
        raise NotImplementedError


class Echo(Scenario):
    name = "echo"
    title = "Echo at rising connection counts (closed loop)"
    value_size = 16
    connections = {"quick": [1, 512], "full": [1, 100, 1000, 4000]}
    cycle_connections, cycle_rate = (10, 200), "20k"

    def steps(self, plan):
        return len(self.connections[plan.name])

    def loads(self, plan):
        return [(f"echo-{count}", ["--connections", str(count), "--mix", "echo:100", "--value-size",
                                   str(self.value_size), *plan.run_flags()])
                for count in self.connections[plan.name]]

    def measure(self, runner, server, progress):
        points = []
        counts = self.connections[runner.plan.name]
        for count, (name, flags) in zip(counts, self.loads(runner.plan)):
            progress.step(f"{server.model} · echo · {count} connections")
            try:
                points.append({"connections": count, **runner.repeated(server, flags, name)})
            except RuntimeError as e:
                # A model that cannot take this many connections (prefork: its workers plus the
                # listen backlog) keeps the points it did serve; larger counts would fail too.
                raise PartlyMeasured(points, f"echo at {count} connections and more",
                                     str(e)) from e
        return points

    def summary(self, results):
        echo = [(m, pts) for m, pts in figures.measured(results, self.name) if m != "redis"]
        if not echo:
            return []
        at = {m: pts[-1] for m, pts in echo}
        best = max(at, key=lambda m: at[m]["throughput"])
        worst = min(at, key=lambda m: at[m]["throughput"])
        conns = at[best]["connections"]
        lines = [f"Echo at {conns} connections: {best} served the most "
                 f"({figures.rate(at[best]['throughput'])}), "
                 f"{at[best]['throughput'] / max(at[worst]['throughput'], 1):.1f}× {worst} "
                 f"({figures.rate(at[worst]['throughput'])})."]
        switches = {m: at[m]["server"]["voluntary_switches_per_request"] for m in at}
        most, least = max(switches, key=switches.get), min(switches, key=switches.get)
        lines.append(f"Per request, {most} made {switches[most]:.2f} voluntary OS context switches "
                     f"and {least} {switches[least]:.2f}; user-space switches per request: " +
                     ", ".join(f"{m} {at[m]['server']['user_switches_per_request']:.2f}"
                               for m in at) + ".")
        cpu = {m: at[m]["server"]["cpu_seconds_per_request"] for m in at}
        cheap, dear = min(cpu, key=cpu.get), max(cpu, key=cpu.get)
        lines.append(f"Server CPU per request ranged from {cpu[cheap] * 1e6:.1f} µs ({cheap}) to "
                     f"{cpu[dear] * 1e6:.1f} µs ({dear}).")
        redis = figures.reference_echo(results).get(conns)
        if redis:
            lines.append(f"redis-server at {conns} connections (the reference): "
                         f"{figures.rate(redis['throughput'])}{figures.limited(redis)}, p99 "
                         f"{figures.duration(redis['latency']['p99'])}; the models' p99 there: " +
                         ", ".join(f"{m} {figures.duration(at[m]['latency']['p99'])}" for m in at) +
                         ".")
        limited = [m for m in at if at[m].get("client_limited")]
        if limited:
            lines.append("The load generator, not the server, was the limit for: " +
                         ", ".join(limited) + " (flagged ⚠; those figures are a floor).")
        return lines

    def cycle(self):
        return [(f"echo, {count} connections",
                 ["--connections", str(count), "--mix", "echo", "--rate", self.cycle_rate])
                for count in self.cycle_connections]


class Getset(Scenario):
    name = "getset"
    title = "GET/SET mix, zipfian keys, swept to the knee"
    get_percent, keys, key_dist, value_size, connections = 90, 100_000, "zipfian:0.99", 64, 32
    # The sweep climbs in quarters of the closed-loop peak; quick takes the peak from one run, runs
    # each deciding step once and bisects the knee to within 10% of the peak; full takes the best
    # of two peak runs, runs each step three times (the majority decides) and bisects to within 5%.
    sweep = {"quick": dict(steps=4, runs=1, precision=10, retries=1, peak_runs=1),
             "full": dict(steps=4, runs=3, precision=5, retries=2, peak_runs=2)}
    cycle_connections, cycle_rate = 50, "20k"

    def mix(self):
        return f"get:{self.get_percent},set:{100 - self.get_percent}"

    def loads(self, plan):
        sweep = self.sweep[plan.name]
        return [("getset-sweep", [
            "--connections", str(self.connections), "--mix", self.mix(), "--keys", str(self.keys),
            "--key-dist", self.key_dist, "--value-size", str(self.value_size), "--sweep",
            "--slo", plan.slo, "--sweep-steps", str(sweep["steps"]),
            "--sweep-runs", str(sweep["runs"]), "--sweep-peak-runs", str(sweep["peak_runs"]),
            "--sweep-retries", str(sweep["retries"]),
            "--sweep-precision", str(sweep["precision"]), *plan.run_flags()])]

    def measure(self, runner, server, progress):
        progress.step(f"{server.model} · get/set zipfian sweep to the knee "
                      f"(--slo {runner.plan.slo})")
        (name, flags), = self.loads(runner.plan)
        return runner.load(server, flags, name)

    def summary(self, results):
        getset = figures.measured(results, self.name)
        if not getset:
            return []
        lines = []
        sweeps = {m: s for m, s in getset if m != "redis"}
        knees = {m: s.get("highest_rate_meeting_slo", 0) for m, s in sweeps.items()}
        best = max(knees, key=knees.get) if knees else None
        missed = [m for m, k in knees.items() if k == 0]
        if best and knees[best] > 0:
            others = ", ".join(f"{m} {figures.knee_in_words(sweeps[m])}" for m, k in knees.items()
                               if m != best and k > 0)
            slo = sweeps[best].get("slo", "the SLO").replace(":", " ≤ ", 1)
            lines.append(f"GET/SET with zipfian keys: {best} held p{slo} up to "
                         f"{figures.knee_in_words(sweeps[best])}" +
                         (f"; {others}" if others else "") + ".")
        redis = figures.reference(results, self.name)
        if redis:
            lines.append(f"redis-server, the reference measured in the same run under the same "
                         f"load, held it up to {figures.knee_in_words(redis)} "
                         f"(closed-loop peak {figures.rate(redis.get('peak_throughput', 0))}): "
                         f"a model's knee well below it is the model's, not the machine's.")
        bounded = [m for m, s in getset if s.get("knee_is_lower_bound") and
                   s.get("highest_rate_meeting_slo", 0) < s.get("peak_throughput", 0)]
        if bounded:
            lines.append("The load generator stayed the limit before the knee for: " +
                         ", ".join(bounded) + " (their knees are lower bounds).")
        at_peak = [m for m, s in getset if s.get("knee_is_lower_bound") and
                   s.get("highest_rate_meeting_slo", 0) >= s.get("peak_throughput", 0) > 0]
        if at_peak:
            lines.append("Met the objective at every rate up to the closed-loop peak (the knee "
                         "lies beyond what the load generator drove): " + ", ".join(at_peak) + ".")
        if missed:
            lines.append("No rate met the SLO for: " + ", ".join(missed) + ".")
        return lines

    def cycle(self):
        return [(f"get/set {self.get_percent}/{100 - self.get_percent}",
                 ["--connections", str(self.cycle_connections), "--mix", self.mix(), "--rate",
                  self.cycle_rate])]


class Wait(Scenario):
    name = "wait"
    redis = False
    micros = 10_000  # a 10 ms downstream call per request
    connections = {"quick": 200, "full": 1000}
    cycle_micros, cycle_connections, cycle_rate = 1000, 500, "10k"

    @property
    def title(self):
        return f"A {figures.micros_in_words(self.micros)} downstream wait per request"

    def loads(self, plan):
        return [("wait", ["--connections", str(self.connections[plan.name]), "--mix",
                          f"sy.wait:{self.micros}", *plan.run_flags()])]

    def measure(self, runner, server, progress):
        connections = self.connections[runner.plan.name]
        progress.step(f"{server.model} · SY.WAIT {figures.micros_in_words(self.micros)} × "
                      f"{connections} connections")
        (name, flags), = self.loads(runner.plan)
        result = runner.repeated(server, flags, name)
        # Little's law: requests in service at once = throughput × time each spends waiting.
        result["concurrent_waits"] = result["throughput"] * self.micros / 1e6
        result["connections"] = connections
        return result

    def summary(self, results):
        wait = figures.measured(results, self.name)
        if not wait:
            return []
        carried = {m: r["concurrent_waits"] for m, r in wait}
        most, least = max(carried, key=carried.get), min(carried, key=carried.get)
        return [f"With a {wait[0][1]['connections']}-connection load each waiting "
                f"{figures.micros_in_words(self.micros)} downstream, {most} carried "
                f"{carried[most]:,.0f} waits at once and {least} only {carried[least]:,.0f}."]

    def cycle(self):
        return [(f"downstream wait {self.cycle_micros // 1000}ms, {self.cycle_connections} "
                 f"connections", ["--connections", str(self.cycle_connections), "--mix",
                                  f"sy.wait:{self.cycle_micros}", "--rate", self.cycle_rate])]


class Block(Scenario):
    name = "block"
    title = "A few blocking requests among many fast ones"
    redis = False
    micros, per_second = 100_000, 2  # a 100 ms blocking call, twice a second
    fast_connections = 50
    fast_rate = {"quick": 2000, "full": 5000}
    # The cycle has no second load generator: one request in a hundred blocks for 10 ms.
    cycle_micros, cycle_rate = 10_000, "5k"

    def fast_flags(self, plan):
        return ["--connections", str(self.fast_connections), "--rate",
                str(self.fast_rate[plan.name]), "--mix", "get:100", *plan.run_flags()]

    def blocker_flags(self):
        """The blocking requests come from a second load generator on one connection of its own,
        running longer than the measured run beside it (which ends it)."""
        return ["--connections", "1", "--rate", str(self.per_second), "--mix",
                f"sy.block:{self.micros}", "--duration", "60s"]

    def loads(self, plan):
        fast = self.fast_flags(plan)
        return [("block-baseline", fast), ("block-beside", fast), ("blocker", self.blocker_flags())]

    def measure(self, runner, server, progress):
        progress.step(f"{server.model} · fast GETs alone, then beside SY.BLOCK "
                      f"{figures.micros_in_words(self.micros)}")
        fast = self.fast_flags(runner.plan)
        alone = runner.measured(server, fast, "block-baseline")
        blocker = runner.start_load(server, self.blocker_flags())
        try:
            time.sleep(0.2)
            beside = runner.measured(server, fast, "block-beside")
        finally:
            blocker.terminate()
            blocker.wait(timeout=30)
        return {"alone": alone, "beside_block": beside}

    def how_often(self):
        return {1: "once a second", 2: "twice a second"}.get(self.per_second,
                                                             f"{self.per_second} times a second")

    def summary(self, results):
        block = figures.measured(results, self.name)
        if not block:
            return []
        growth = {m: r["beside_block"]["latency"]["p99"] / max(r["alone"]["latency"]["p99"], 1e-9)
                  for m, r in block}
        worst, best = max(growth, key=growth.get), min(growth, key=growth.get)
        # Below 1× the p99 beside the blocking request was lower than alone: the two runs differ
        # by the machine's noise, not by any slowdown, which "took it to 0.4×" would misstate.
        least = (f"and to {growth[best]:.1f}× on {best}" if growth[best] >= 1 else
                 f"and did not raise it on {best} ({growth[best]:.1f}×: no slower than alone)")
        return [f"One blocking request of {figures.micros_in_words(self.micros)} "
                f"{self.how_often()} took the p99 of everyone else's fast "
                f"GETs to {growth[worst]:.1f}× its value alone on {worst}, {least}."]

    def cycle(self):
        return [("a few blocking among fast",
                 ["--connections", str(self.fast_connections), "--mix",
                  f"get:99,sy.block:{self.cycle_micros}:1", "--rate", self.cycle_rate])]


class Cpu(Scenario):
    name = "cpu"
    title = "CPU-bound requests"
    redis = False
    server_on_every_cpu = True
    micros, connections = 1_000, 8  # 1 ms of CPU per request
    cycle_micros, cycle_connections, cycle_rate = 100, 20, "5k"

    def loads(self, plan):
        return [("cpu", ["--connections", str(self.connections), "--mix", f"sy.cpu:{self.micros}",
                         *plan.run_flags()])]

    def measure(self, runner, server, progress):
        progress.step(f"{server.model} · SY.CPU {self.micros} µs, server on every CPU")
        (name, flags), = self.loads(runner.plan)
        result = runner.repeated(server, flags, name)
        # Over the same span as the CPU time: from the scrape before the run to the one after.
        result["cores_used"] = result["server"]["cpu_seconds"] / result["server"]["wall_seconds"]
        return result

    def summary(self, results):
        cpu = figures.measured(results, self.name)
        if not cpu:
            return []
        used = {m: r["cores_used"] for m, r in cpu}
        return [f"CPU-bound requests ({figures.micros_in_words(self.micros)} of CPU each) used " +
                ", ".join(f"{used[m]:.2f} cores on {m}" for m in used) +
                f" (the machine has {results['machine']['cores']})."]

    def cycle(self):
        return [(f"CPU-bound {self.cycle_micros}us",
                 ["--connections", str(self.cycle_connections), "--mix",
                  f"sy.cpu:{self.cycle_micros}", "--rate", self.cycle_rate])]


class Idle(Scenario):
    name = "idle"
    title = "Idle connections: memory per connection"
    counts = {"quick": [1000], "full": [1000, 5000, 10000]}
    # For the server to settle what it allocated for them, and for redis-server's count of its
    # clients' memory to cover them all: its clientsCron visits every client once a second.
    settle_seconds = 1.2
    cycle_connections, cycle_rate = 1000, "100"

    def steps(self, plan):
        return len(self.counts[plan.name])

    def loads(self, plan):
        return []  # RESP connections are plain sockets; gRPC ones are held by servers.py

    def measure(self, runner, first_server, progress):
        points = []
        for index, count in enumerate(self.counts[runner.plan.name]):
            progress.step(f"{first_server.model} · {count} idle connections")
            # A fresh server for each count: one that served the count before keeps what it
            # allocated then (prefork's workers are touched by the first count, freed thread stacks
            # are cached), so a second count on it would read too little.
            try:
                server = first_server if index == 0 else runner.start(first_server.model, self)
                try:
                    points.append(self.point(runner, server, count))
                finally:
                    if server is not first_server:
                        server.stop()  # waits for its exit: the caller stops only the first
            except (RuntimeError, OSError) as e:
                if not points:
                    raise
                # The counts measured before stay; the larger ones are not measured.
                raise PartlyMeasured(points, f"idle at {count} connections and more", str(e)) from e
        return points

    def point(self, runner, server, count):
        made_of = anatomy.made_of(runner.registry, server.model)
        stacks_before = (anatomy.mapped_starts(server.process.pid)
                         if made_of["unit_stack_mapped"] else None)
        before, tcp_pages = server.scrape(), anatomy.tcp_memory_pages()
        if runner.speaks_grpc(server.model):
            # gRPC connections held by the load generator itself: each a READY channel that
            # made one call, as each RESP connection below answered one PING.
            with hold_idle_grpc_connections(runner.binary, server.port, count, runner.load_cpus,
                                            timeout=30) as (opened, answered):
                time.sleep(self.settle_seconds)
                after = server.scrape()
                held = self.held(server, made_of, stacks_before, tcp_pages, answered)
        else:
            sockets, answered = hold_idle_connections(server.port, count, timeout=5)
            opened = len(sockets)
            time.sleep(self.settle_seconds)
            after = server.scrape()
            held = self.held(server, made_of, stacks_before, tcp_pages, answered)
            for conn in sockets:
                conn.close()

        def grown(key):
            return after.get(key, 0) - before.get(key, 0)
        # Per connection served: one left waiting in the backlog costs the server nothing.
        served = max(1, answered)
        point = {"connections": count, "opened": opened, "answered": answered,
                 "pss_bytes_per_connection": grown('switchyard_memory_bytes{kind="pss"}') / served,
                 "rss_bytes_per_connection": grown('switchyard_memory_bytes{kind="rss"}') / served,
                 "os_threads": after.get("switchyard_os_threads", 0),
                 "os_processes": after.get("switchyard_os_processes", 0), "made_of": made_of}
        frames = "switchyard_coroutine_frame_bytes"
        if frames in after:  # the coroutine model counts its frames where they are allocated
            point["frame_bytes_per_connection"] = grown(frames) / served
        return {**point, **self.buffers(before, after, served), **held}

    def held(self, server, made_of, stacks_before, tcp_pages_before, answered):
        """What is read while the connections are held: the kernel's share of each server-side
        socket, which no PSS counts (anatomy.py), the machine's TCP pages before and now, and, for a
        model whose units have stacks of their own, those stacks."""
        epoll = made_of["waits_in"] == "epoll"
        out = {"kernel": {"socket_buffers": anatomy.socket_buffers(server.port),
                          "socket_objects": anatomy.socket_objects(epoll), "epoll": epoll,
                          "tcp_memory_pages": {"before": tcp_pages_before,
                                               "during": anatomy.tcp_memory_pages()}}}
        if stacks_before is not None:
            out["unit_stacks"] = anatomy.unit_stacks(server.process.pid, stacks_before, answered)
        return out

    @staticmethod
    def buffers(before, after, served):
        """The I/O buffers each connection served added: our servers' switchyard_io_buffer_bytes,
        redis-server's own count of its clients' memory (client structs included); nothing for a
        server that counts neither (the peers, grpc), which the report shows as "—", not 0."""
        for source, prefix in (("switchyard_io_buffer_bytes", "switchyard_io_buffer_bytes"),
                               ("mem_clients_normal", "redis_mem_clients_normal_bytes")):
            keys = [k for k in after if k == prefix or k.startswith(prefix + "{")]
            if keys:
                growth = sum(after[k] - before.get(k, 0) for k in keys)
                return {"buffer_bytes_per_connection": growth / served, "buffer_source": source}
        return {}

    def summary(self, results):
        idle = figures.measured(results, self.name)
        last = {m: pts[-1] for m, pts in idle if m != "redis"}
        if not last:
            return []
        reference = dict(idle).get("redis")
        per = {m: p["pss_bytes_per_connection"] for m, p in last.items()}
        small, big = min(per, key=per.get), max(per, key=per.get)
        lines = [f"Holding {last[small]['connections']:,} idle connections cost "
                 f"{figures.kib(per[small])} each on {small} and {figures.kib(per[big])} on {big}" +
                 (f" (redis-server: {figures.kib(reference[-1]['pss_bytes_per_connection'])})."
                  if reference else ".")]
        short = [f"{m} served {p['answered']:,} of {p['opened']:,}" for m, p in last.items()
                 if p["answered"] < p["opened"]]
        if short:
            lines.append("Not every model held them all: " + "; ".join(short) + ".")
        return lines

    def cycle(self):
        return [("idle connections", ["--connections", str(self.cycle_connections), "--mix", "get",
                                      "--rate", self.cycle_rate])]


# In the order they run and the report shows them; a section's number is its place here.
SCENARIOS = [Echo(), Getset(), Wait(), Block(), Cpu(), Idle()]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def numbered_title(scenario):
    return f"{SCENARIOS.index(scenario) + 1}. {scenario.title}"


def cycle_runs():
    """(label, flags) of every run of the compose stack's load cycle, scenario by scenario."""
    return [run for scenario in SCENARIOS for run in scenario.cycle()]
