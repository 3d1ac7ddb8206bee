"""Writes report.md, a self-contained report.html and PNG charts from the comparison's results.

Every sentence of the reading is computed from the figures; nothing is written in advance. Each
scenario's section title and sentences come from its declaration (scenarios.py); its table is here.
"""

import base64
import html
from pathlib import Path

import matplotlib

from . import figures, study
from .scenarios import SCENARIOS, numbered_title

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# -- tables -----------------------------------------------------------------------------------
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _amount(value, unit):
    """A switch-cost figure in its unit: nanoseconds (switches are ns to µs) or bytes."""
    if unit == "ns":
        return f"{value / 1000:,.2f} µs" if value >= 1000 else f"{value:,.1f} ns"
    return f"{value / 1024:,.1f} KiB" if value >= 1024 else f"{value:,.0f} B"


def _switchcost_table(switchcost):
    if not switchcost or "results" not in switchcost:
        return [f"Switch-cost microbenchmarks did not run: {switchcost.get('error', 'skipped')}"]
    amount = _amount
    rows = []
    for r in switchcost["results"]:
        unit = r.get("unit_of_value", "")
        rows.append([r.get("unit"), r.get("operation"), r.get("method", ""),
                     "yes" if r.get("pinned") else "no", amount(r.get("value", 0), unit),
                     "± " + amount(r.get("spread", 0), unit)])
    return _table(["unit", "operation", "method", "pinned", "median", "spread"], rows)


def _echo_table(results):
    rows = []
    redis = figures.reference_echo(results)
    for model, points in figures.measured(results, "echo"):
        for p in points:
            s = p["server"]
            ruler = redis.get(p["connections"])
            versus = (f"{p['latency']['p99'] / ruler['latency']['p99']:.1f}×"
                      if ruler and model != "redis" and ruler["latency"]["p99"] > 0 else "—")
            rows.append([model, p["connections"], figures.throughput(p),
                         figures.duration(p["latency"]["p50"]), figures.p99(p), versus,
                         figures.duration(p["latency"]["p999"]),
                         f"{s['voluntary_switches_per_request']:.2f}",
                         f"{s['involuntary_switches_per_request']:.3f}",
                         f"{s['user_switches_per_request']:.2f}",
                         f"{s['cpu_seconds_per_request'] * 1e6:.1f} µs",
                         f"{p.get('failed', 0):,}"])
    return _table(["model", "connections", "throughput", "p50", "p99", "p99 vs redis-server",
                   "p99.9", "vol. switches/req",
                   "invol. switches/req", "user switches/req", "CPU/req", "unanswered"], rows)






def _knee_interval(sweep):
    """Where the knee lies: between the highest rate that met and the lowest that missed."""
    met, missed = sweep.get("highest_rate_meeting_slo", 0), sweep.get("lowest_rate_missing_slo", 0)
    if sweep.get("knee_is_lower_bound"):
        return sweep.get("knee_note", "")
    return f"{met:,.0f}–{missed:,.0f}/s" if missed else "—"


def _knee_runs(sweep):
    """The objective's percentile in each run at the knee's rate: the spread behind the verdict."""
    knee = sweep.get("highest_rate_meeting_slo", 0)
    for decision in sweep.get("decisions", []):
        if knee and abs(decision.get("rate", 0) - knee) < 0.5:
            return " / ".join(figures.duration(v) for v in decision.get("observed_seconds", []))
    return "—"






def _getset_table(results):
    rows = []
    redis = figures.reference(results, "getset")
    redis_knee = redis.get("highest_rate_meeting_slo", 0) if redis else 0
    for model, sweep in figures.measured(results, "getset"):
        knee = sweep.get("highest_rate_meeting_slo", 0)
        versus = f"{knee / redis_knee:.2f}×" if redis_knee and model != "redis" else "—"
        rows.append([model, figures.rate(sweep.get("peak_throughput", 0)), figures.knee(sweep),
                     _knee_interval(sweep), _knee_runs(sweep), versus, sweep.get("slo", ""),
                     len(sweep.get("steps", []))])
    return _table(["model", "closed-loop peak", "knee (highest rate meeting the SLO)",
                   "knee lies in", "p99 of the knee's runs", "knee vs redis-server", "SLO",
                   "runs"], rows)


def _wait_table(results):
    rows = []
    for model, r in figures.measured(results, "wait"):
        rows.append([model, r["connections"], figures.throughput(r),
                     f"{r['concurrent_waits']:,.0f}", figures.p99(r)])
    return _table(["model", "connections", "throughput", "waits carried at once", "p99"], rows)


def _block_table(results):
    rows = []
    for model, r in figures.measured(results, "block"):
        a, b = r["alone"]["latency"], r["beside_block"]["latency"]
        rows.append([model, figures.duration(a["p99"]), figures.duration(b["p99"]),
                     figures.duration(a["p999"]), figures.duration(b["p999"]),
                     figures.duration(b["max"]), f"{b['p99'] / max(a['p99'], 1e-9):.1f}×"])
    return _table(["model", "p99 alone", "p99 beside SY.BLOCK", "p99.9 alone",
                   "p99.9 beside", "max beside", "p99 grew"], rows)


def _cpu_table(results):
    rows = []
    for model, r in figures.measured(results, "cpu"):
        rows.append([model, figures.throughput(r), f"{r['cores_used']:.2f}", figures.p99(r)])
    return _table(["model", "throughput", "cores used", "p99"], rows)


def _idle_table(results):
    rows = []
    for model, points in figures.measured(results, "idle"):
        for p in points:
            rows.append([model, p["connections"], f"{p['answered']:,} of {p['opened']:,}",
                         figures.kib(p["pss_bytes_per_connection"]),
                         figures.kib(p["rss_bytes_per_connection"]),
                         f"{p['os_threads']:.0f}", f"{p['os_processes']:.0f}"])
    return _table(["model", "connections", "served", "PSS per connection", "RSS per connection",
                   "OS threads", "OS processes"], rows) + _anatomy(results)


ANATOMY_TITLE = "Where an idle connection's memory goes"


def _unit_memory(results, model, point):
    """(bytes, cell) of the unit that serves one connection: its coroutine frames or the stack
    pages its units touched, measured in this server, else the switch-cost study's PSS per unit;
    0 for a model that makes none a connection; None when neither this run nor the study measured
    it."""
    if "frame_bytes_per_connection" in point:
        frame = point["frame_bytes_per_connection"]
        return frame, f"{figures.kib(frame)} (coroutine frames, counted by the server)"
    stacks = point.get("unit_stacks", {})
    if "bytes_per_stack" in stacks:
        touched = stacks["bytes_per_stack"]
        return touched, (f"{figures.kib(touched)} (stack pages touched, of "
                         f"{figures.kib(stacks['mapping_bytes'])} stacks)")
    made_of = point.get("made_of") or {}
    if made_of.get("shared_unit"):
        return 0, made_of["shared_unit"]
    rows = (results.get("switchcost") or {}).get("study", {}).get("rows", [])
    row = next((r for r in rows if made_of.get("unit") and r.get("unit") == made_of["unit"]), None)
    memory = (row or {}).get("memory") or {}
    if memory.get("measured"):
        return memory["value"], f"{figures.kib(memory['value'])} ({row['kind']}, switch cost)"
    return None, "—"


def _kernel_memory(point):
    """The kernel's share of one server-side socket, which no PSS counts: what its buffers hold
    and the slab objects it is made of."""
    kernel = point.get("kernel")
    if not kernel:
        return "—"
    held = kernel["socket_buffers"].get("bytes_per_socket")
    objects = kernel["socket_objects"].get("bytes_per_socket")
    return (f"{figures.kib((held or 0) + (objects or 0))} (buffers "
            f"{figures.kib(held) if held is not None else '—'}, objects "
            f"{figures.kib(objects) if objects is not None else 'unreadable'})")


def _anatomy_row(results, model, p):
    pss, buffers = p["pss_bytes_per_connection"], p.get("buffer_bytes_per_connection")
    unit, unit_cell = _unit_memory(results, model, p)
    other = "—" if unit is None else figures.kib(pss - (buffers or 0) - unit) + (
        "" if buffers is not None else " (buffers in it)")
    pages = p.get("kernel", {}).get("tcp_memory_pages", {})
    known = None not in (pages.get("before"), pages.get("during"))
    return [model, f"{p['answered']:,} of {p['opened']:,}", figures.kib(pss),
            "—" if buffers is None else figures.kib(buffers) + (
                " (mem_clients_normal)" if p.get("buffer_source") == "mem_clients_normal" else ""),
            unit_cell, other, _kernel_memory(p),
            f"{pages['before']:,} → {pages['during']:,}" if known else "—"]


def _anatomy(results):
    """Each model's idle connection at the most connections it was measured with, taken apart:
    its buffers, its unit, the rest of its PSS, and what the kernel holds for its socket."""
    last = [(m, pts[-1]) for m, pts in figures.measured(results, "idle") if pts]
    if not last or not any("kernel" in p for _, p in last):
        return []  # a run from before the idle scenario took connections apart
    rows = [_anatomy_row(results, model, p) for model, p in last]
    lines = ["", f"{ANATOMY_TITLE}, at the most connections each model was measured with "
                 "(per connection served):", ""]
    lines += _table(["model", "served", "PSS", "I/O buffers", "unit", "other",
                     "kernel, not in PSS", "TCP pages, machine (before → during)"], rows)
    lines += ["", "I/O buffers: the growth of the server's switchyard_io_buffer_bytes (its "
              "connections' input and output buffers and the pools they come from); for "
              "redis-server its own count of its normal clients' memory (INFO memory's "
              "mem_clients_normal: query and output buffers and the client structs); — where the "
              "server counts neither. Unit: the coroutine model's frames, as it counts them where "
              "they are allocated (switchyard_coroutine_frame_bytes), or the stack pages the "
              "server's own units touched (/proc/PID/smaps: the new stack mappings above a guard "
              "page, one a connection), "
              "else what one unit costs in this run's switch-cost microbenchmarks (PSS per unit "
              "with the most alive); none where what serves a connection existed before it came "
              "(a shared pool, prefork's processes) or serves them all. Other: PSS minus buffers "
              "minus unit (session state, the event loop's per-descriptor state, allocator "
              "slack); its pieces come from different measurements, so it can be negative. "
              "Kernel: per server-side socket, what `ss -tmn` shows it holding (r, t, f, w, o, "
              "bl), plus the slab objects a socket is made of; the machine's TCP pages "
              "(/proc/net/sockstat) are a cross-check, which moves in per-CPU batches."]
    lines += _slab_lines(last) + _stack_notes(last)
    return lines


def _slab_lines(last):
    objects = [(m, p["kernel"]["socket_objects"]) for m, p in last if "kernel" in p]
    unreadable = next((o["unreadable"] for _, o in objects if "unreadable" in o), None)
    if unreadable:
        return ["", f"Slab objects: unreadable ({unreadable})."]
    caches = {}
    for _, o in objects:
        caches.update(o.get("caches", {}))
    epoll = [m for m, p in last if p.get("kernel", {}).get("epoll")]
    missing = sorted({c for _, o in objects for c in o.get("missing", [])})
    return ["", "Slab objects a socket is made of (objsize, /proc/slabinfo): " +
            ", ".join(f"{c} {b:,} B" for c, b in caches.items()) +
            (f"; the eventpoll ones only for the models that wait in epoll ({', '.join(epoll)})"
             if epoll else "") +
            (f"; not found: {', '.join(missing)}" if missing else "") + "."]


def _stack_notes(last):
    notes = [f"{m}: {p['unit_stacks']['why']}" for m, p in last
             if "why" in p.get("unit_stacks", {})]
    return (["", "Stacks not measured in the server (its unit's figure is the switch cost's): " +
             "; ".join(notes) + "."] if notes else [])


# The seed's question (docs/peers.md): Python's coroutines against Go's goroutines, with the
# C++ fiber and coroutine beside them. Each model and the switch-cost figure that is its unit's
# switch: a chosen few, in the order the question reads (not the model list).
SEED_MODELS = [("asyncio", "asyncio-task", "future-pingpong/asyncio"),
               ("uvloop", "asyncio-task", "future-pingpong/uvloop"),
               ("gevent", "greenlet", "greenlet.switch"),
               ("pythreads", "python-thread", "lock-pingpong"),
               ("go", "goroutine", "chan-pingpong"),
               ("fiber", "fiber", "boost-fiber"),
               ("coroutine", "coroutine", "symmetric-transfer")]
SEED_TITLE = "Python's coroutines, Go's goroutines, greenlets and threads, side by side"


def _unit_switch(results, unit, method):
    for r in results.get("switchcost", {}).get("results", []):
        if (r.get("unit"), r.get("method"), r.get("operation"), r.get("pinned")) == (
                unit, method, "switch", True):
            return _amount(r["value"], r.get("unit_of_value", "ns"))
    return "—"


def _seed_table(results):
    """One row a model of the question, each figure from this run's own rows: a switch of its unit
    (switch cost, one CPU), memory per idle connection (the most connections held), echo at the
    most connections (throughput, p99, OS switches a request), p99 beside one SY.BLOCK, and the
    cores the CPU-bound scenario used."""
    ran = {m["model"]: m["scenarios"] for m in results["models"]}
    rows = []
    for model, unit, method in SEED_MODELS:
        if model not in ran:
            continue
        s = ran[model]
        echo = s["echo"][-1] if s.get("echo") else None
        idle = s["idle"][-1] if s.get("idle") else None
        block, cpu = s.get("block"), s.get("cpu")
        grew = (block["beside_block"]["latency"]["p99"]
                / max(block["alone"]["latency"]["p99"], 1e-9)) if block else None
        rows.append([
            model, _unit_switch(results, unit, method),
            figures.kib(idle["pss_bytes_per_connection"]) if idle else "—",
            f"{figures.throughput(echo)} at {echo['connections']}" if echo else "—",
            figures.duration(echo["latency"]["p99"]) if echo else "—",
            f"{echo['server']['voluntary_switches_per_request']:.2f}" if echo else "—",
            f"{grew:.1f}×" if block else "—",
            f"{cpu['cores_used']:.2f}" if cpu else "—"])
    return _table(["model", "one switch (1 CPU)", "memory per idle connection",
                   "echo throughput", "echo p99", "OS switches per request",
                   "p99 beside SY.BLOCK", "cores used, CPU-bound"], rows) + [
        "",
        "Each figure is this run's own, from the sections below. A goroutine's switch is a "
        "channel ping-pong, an asyncio task's a Future ping-pong on its loop, a greenlet's a "
        "direct switch, a Python thread's a lock ping-pong under the GIL. The user-space switches"
        " the servers count are not one quantity: goroutine switches are Go's sample count ×8, "
        "asyncio's each suspension of a connection's task, gevent's each switch into its hub "
        "(docs/peers.md). The peers keep stores of their own, so their figures include their "
        "language's speed."]


# Each scenario's table (scenarios.py declares the rest: its title, its sentences).
TABLES = {"echo": _echo_table, "getset": _getset_table, "wait": _wait_table,
          "block": _block_table, "cpu": _cpu_table, "idle": _idle_table}


# -- charts -----------------------------------------------------------------------------------
def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _charts(results, folder):
    charts = []
    echo = figures.measured(results, "echo")
    if echo:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for model, points in echo:
            xs = [p["connections"] for p in points]
            left.plot(xs, [p["throughput"] for p in points], marker="o", label=model)
            right.plot(xs, [p["latency"]["p99"] * 1e3 for p in points], marker="o", label=model)
        left.set(xscale="log", xlabel="connections", ylabel="requests/s", title="echo throughput")
        right.set(xscale="log", yscale="log", xlabel="connections", ylabel="p99 (ms)",
                  title="echo p99 latency")
        left.legend(fontsize=8)
        charts.append(("Echo: throughput and p99 against connections",
                       _save(fig, folder / "echo.png")))

        fig, ax = plt.subplots(figsize=(11, 4))
        models = [m for m, _ in echo]
        last = [points[-1]["server"] for _, points in echo]
        x = range(len(models))
        width = 0.27
        ax.bar([i - width for i in x], [s["voluntary_switches_per_request"] for s in last], width,
               label="voluntary OS switches")
        ax.bar(x, [s["involuntary_switches_per_request"] for s in last], width,
               label="involuntary OS switches")
        ax.bar([i + width for i in x], [s["user_switches_per_request"] for s in last], width,
               label="user-space switches")
        ax.set_xticks(list(x), models)
        ax.set(ylabel="per request",
               title=f"switches per request, echo at {echo[0][1][-1]['connections']} connections")
        ax.legend(fontsize=8)
        charts.append(("Switches per request", _save(fig, folder / "switches.png")))

        fig, ax = plt.subplots(figsize=(11, 3.5))
        ax.bar(models, [s["cpu_seconds_per_request"] * 1e6 for s in last])
        ax.set(ylabel="µs of server CPU", title="CPU per request (echo, largest connection count)")
        charts.append(("CPU per request", _save(fig, folder / "cpu_per_request.png")))

    getset = figures.measured(results, "getset")
    if getset:
        fig, ax = plt.subplots(figsize=(11, 4))
        for model, sweep in getset:
            # Every run the sweep made is a point (repeats and re-runs included); the line joins
            # each rate's median run.
            runs = sweep.get("steps", [])
            by_rate = {}
            for run in runs:
                by_rate.setdefault(run.get("target_rate", 0), []).append(run)
            medians = [sorted(rs, key=lambda r: r["latency"]["p99"])[len(rs) // 2]
                       for _, rs in sorted(by_rate.items())]
            style = dict(color="black", linestyle="--") if model == "redis" else {}
            line, = ax.plot([r.get("throughput", 0) for r in medians],
                            [r["latency"]["p99"] * 1e3 for r in medians], marker="o",
                            label=("redis-server (reference)" if model == "redis" else model),
                            **style)
            ax.scatter([r.get("throughput", 0) for r in runs],
                       [r["latency"]["p99"] * 1e3 for r in runs], s=10, alpha=0.5,
                       color=line.get_color())
        slo = getset[0][1].get("slo_seconds", 0)
        if slo:
            ax.axhline(slo * 1e3, color="grey", linewidth=0.8, linestyle=":")
        ax.set(yscale="log", xlabel="achieved requests/s", ylabel="p99 (ms, log)",
               title="GET/SET zipfian: latency against throughput, every run of the sweep")
        ax.legend(fontsize=8)
        charts.append(("Latency against throughput", _save(fig, folder / "latency_throughput.png")))

    idle = figures.measured(results, "idle")
    if idle:
        fig, ax = plt.subplots(figsize=(11, 4))
        for model, points in idle:
            ax.plot([p["connections"] for p in points],
                    [p["pss_bytes_per_connection"] / 1024 for p in points], marker="o", label=model)
        ax.set(xscale="log", xlabel="idle connections", ylabel="KiB PSS per connection",
               title="memory per connection")
        ax.legend(fontsize=8)
        charts.append(("Memory per connection", _save(fig, folder / "memory.png")))

    block = figures.measured(results, "block")
    if block:
        fig, ax = plt.subplots(figsize=(11, 4))
        models = [m for m, _ in block]
        x = range(len(models))
        ax.bar([i - 0.2 for i in x], [r["alone"]["latency"]["p99"] * 1e3 for _, r in block], 0.4,
               label="fast GETs alone")
        ax.bar([i + 0.2 for i in x], [r["beside_block"]["latency"]["p99"] * 1e3 for _, r in block],
               0.4, label="beside SY.BLOCK")
        ax.set_xticks(list(x), models)
        ax.set(yscale="log", ylabel="p99 of fast GETs (ms, log)",
               title="what a blocking request does to everyone else's tail")
        ax.legend(fontsize=8)
        charts.append(("The blocking scenario's tail", _save(fig, folder / "blocking.png")))
    return charts


# -- the reading ------------------------------------------------------------------------------
def _reading(results):
    """Every scenario's sentences, in the order of the sections."""
    return [line for scenario in SCENARIOS for line in scenario.summary(results)]


def _load_results(node, where=""):
    """(where, load result) for every load generator result under `node`, however nested."""
    if isinstance(node, dict):
        if "latency" in node and "throughput" in node:
            yield where, node
        for key, value in node.items():
            yield from _load_results(value, f"{where}/{key}" if where else key)
    elif isinstance(node, list):
        for value in node:
            yield from _load_results(value, where)


def _steal_line(results):
    """How much of the machine the hypervisor took during the load runs (a VM's stalls, which
    open-loop tails count); protobuf JSON leaves a zero out."""
    steals = []
    for model in results["models"]:
        for where, result in _load_results(model["scenarios"]):
            steals.append((result.get("machine_steal_fraction", 0), f"{model['model']} {where}"))
    if not steals or max(steals)[0] == 0:
        return "- steal (CPU time the hypervisor gave to others): none during the load runs"
    worst, where = max(steals)
    median = sorted(s for s, _ in steals)[len(steals) // 2]
    return (f"- steal (CPU time the hypervisor gave to others, in stalls a tail can include): "
            f"median {median * 100:.2f}% of the machine over the {len(steals)} load runs, "
            f"highest {worst * 100:.2f}% ({where})")


def _stall_line(results):
    """Whether any run showed the delayed-ACK stall signature (a cluster of latencies at 40 ms: a
    server that leaves Nagle's algorithm on); protobuf JSON leaves a false flag out."""
    stalled = [f"{model['model']} {where}" for model in results["models"]
               for where, result in _load_results(model["scenarios"])
               if result.get("delayed_ack_stall")]
    if not stalled:
        return "- delayed-ACK stalls (replies held by Nagle's algorithm): none in any load run"
    return ("- delayed-ACK stall signature (a cluster at the 40 ms delayed-ACK timeout: replies "
            "held by Nagle's algorithm) in: " + ", ".join(stalled))


def _machine_lines(results):
    m = results["machine"]
    lines = [f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB",
             f"- kernel: {m['kernel']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items())]
    pin = results["pinning"]
    lines.append(f"- pinning: server on CPU {pin['server']}, load generator on CPU {pin['load']}"
                 if pin["server"] else "- pinning: none (fewer than 2 CPUs)")
    if "runtimes" in m:  # runs saved before the peers have none
        r = m["runtimes"]
        threads = ("1 on the server's one CPU, every core where a scenario gives it every CPU"
                   if pin["server"] else "every core")
        # The runtimes' versions and settings (not the model list).
        lines.append(f"- the peers' runtimes: {r['go']}, GOMAXPROCS = --threads ({threads}), "
                     f"GOGC={r['gogc']}; {r['python']} (one thread runs Python code at a time, "
                     f"gc thresholds {r['python_gc_thresholds']}), uvloop {r['uvloop']}, "
                     f"gevent {r['gevent']}. Each peer keeps a store of its own, so its figures "
                     "include its language's speed (docs/peers.md)")
    affected = [f"{k}: {v}" for k, v in m["mitigations"].items() if v != "Not affected"]
    if affected:
        lines.append("- mitigations (the rest: not affected): " + "; ".join(affected))
    lines.append(_steal_line(results))
    lines.append(_stall_line(results))
    lines.append(f"- run: {'--quick' if results['quick'] else 'full'}, "
                 f"{results['elapsed_seconds']:.0f} s; "
                 + ("one run a point" if results["quick"] else
                    "each point the median of repeated runs, their range in brackets"))
    return lines


def write(results, folder):
    folder = Path(folder)
    charts = _charts(results, folder)
    md = ["# Switchyard comparison", "", "## What the numbers show", ""]
    md += [f"- {line}" for line in _reading(results)] or ["- (no scenario ran)"]
    md += ["", f"## {study.TITLE}", ""] + study.section(results.get("switchcost"))
    if any(m["model"] == model for m in results["models"] for model, _, _ in SEED_MODELS[:5]):
        md += ["", f"## {SEED_TITLE}", ""] + _seed_table(results)
    md += ["", "## Machine", ""] + _machine_lines(results)
    md += ["", "## Switch cost", ""] + _switchcost_table(results.get("switchcost", {}))
    for scenario in SCENARIOS:
        if figures.measured(results, scenario.name):
            md += ["", f"## {numbered_title(scenario)}", ""] + TABLES[scenario.name](results)
    skipped = [(m["model"], s, why) for m in results["models"] for s, why in m["skipped"].items()]
    if skipped:
        md += ["", "## Not measured", ""] + [f"- {m} ({s}): {why}" for m, s, why in skipped]
    md += ["", "## Charts", ""] + [f"![{title}]({path.name})" for title, path in charts]
    md += ["", "Raw results: `results.json` and `raw/` beside this report."]
    (folder / "report.md").write_text("\n".join(md) + "\n")
    (folder / "report.html").write_text(_html(md, charts))


def _html(md_lines, charts):
    """The same content as report.md, as one self-contained page (charts inlined)."""
    images = {path.name: base64.b64encode(path.read_bytes()).decode() for _, path in charts}
    body, in_table = [], False
    for line in md_lines:
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set(line) <= set("|-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<p>• {html.escape(line[2:])}</p>")
        elif line.startswith("!["):
            title, name = line[2:].split("](")
            body.append(f'<figure><img alt="{html.escape(title)}" '
                        f'src="data:image/png;base64,{images[name.rstrip(")")]}">'
                        f"<figcaption>{html.escape(title)}</figcaption></figure>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "th{background:#f3f3f3}img{max-width:100%}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Switchyard comparison</title>"
            f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n")
