"""Writes report.md, a self-contained report.html and PNG charts from the comparison's results.

Every sentence of the reading is computed from the figures; nothing is written in advance.
"""

import base64
import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _us(seconds):
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def _rate(value):
    return f"{value:,.0f}/s"


def _kib(value):
    return f"{value / 1024:,.1f} KiB"


def _measured(results, scenario):
    """(model, data) for every model that ran `scenario`."""
    return [(m["model"], m["scenarios"][scenario]) for m in results["models"]
            if scenario in m["scenarios"]]


def _limited(result):
    return " ⚠ client-limited" if result.get("client_limited") else ""


def _throughput(result):
    """The median run's throughput, its range over the repeats when there were several, and the
    client-limited flag."""
    low, high = result.get("spread", {}).get("throughput", [0, 0])
    spread = f" ({low:,.0f}–{high:,.0f})" if result.get("repeats", 1) > 1 else ""
    return _rate(result["throughput"]) + spread + _limited(result)


def _p99(result):
    """The median run's p99, with the range of the repeats' p99s when there were several."""
    low, high = result.get("spread", {}).get("p99", [0, 0])
    spread = f" ({_us(low)}–{_us(high)})" if result.get("repeats", 1) > 1 else ""
    return _us(result["latency"]["p99"]) + spread


# -- tables -----------------------------------------------------------------------------------
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _switchcost_table(switchcost):
    if not switchcost or "results" not in switchcost:
        return [f"Switch-cost microbenchmarks did not run: {switchcost.get('error', 'skipped')}"]
    def amount(value, unit):
        if unit == "ns":
            return f"{value / 1000:,.2f} µs" if value >= 1000 else f"{value:,.1f} ns"
        return f"{value / 1024:,.1f} KiB" if value >= 1024 else f"{value:,.0f} B"

    rows = []
    for r in switchcost["results"]:
        unit = r.get("unit_of_value", "")
        rows.append([r.get("unit"), r.get("operation"), r.get("method", ""),
                     "yes" if r.get("pinned") else "no", amount(r.get("value", 0), unit),
                     "± " + amount(r.get("spread", 0), unit)])
    return _table(["unit", "operation", "method", "pinned", "median", "spread"], rows)


def _echo_table(results):
    rows = []
    redis = _reference_echo(results)
    for model, points in _measured(results, "echo"):
        for p in points:
            s = p["server"]
            ruler = redis.get(p["connections"])
            versus = (f"{p['latency']['p99'] / ruler['latency']['p99']:.1f}×"
                      if ruler and model != "redis" and ruler["latency"]["p99"] > 0 else "—")
            rows.append([model, p["connections"], _throughput(p),
                         _us(p["latency"]["p50"]), _p99(p), versus,
                         _us(p["latency"]["p999"]),
                         f"{s['voluntary_switches_per_request']:.2f}",
                         f"{s['involuntary_switches_per_request']:.3f}",
                         f"{s['user_switches_per_request']:.2f}",
                         f"{s['cpu_seconds_per_request'] * 1e6:.1f} µs",
                         f"{p.get('failed', 0):,}"])
    return _table(["model", "connections", "throughput", "p50", "p99", "p99 vs redis-server",
                   "p99.9", "vol. switches/req",
                   "invol. switches/req", "user switches/req", "CPU/req", "unanswered"], rows)


def _knee(sweep):
    """The knee as the report states it: "≥ X/s" when the sweep found only a lower bound."""
    knee = sweep.get("highest_rate_meeting_slo", 0)
    return ("≥ " if sweep.get("knee_is_lower_bound") else "") + _rate(knee)


def _knee_in_words(sweep):
    """The knee in a sentence: "at least X/s" when the sweep found only a lower bound."""
    return _knee(sweep).replace("≥ ", "at least ")


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
            return " / ".join(_us(v) for v in decision.get("observed_seconds", []))
    return "—"


def _reference(results, scenario):
    """redis-server's figures in `scenario`, when it ran as the reference row."""
    return dict(_measured(results, scenario)).get("redis")


def _reference_echo(results):
    """redis-server's echo points by connection count ({} when it did not run)."""
    return {p["connections"]: p for p in (_reference(results, "echo") or [])}


def _getset_table(results):
    rows = []
    redis = _reference(results, "getset")
    redis_knee = redis.get("highest_rate_meeting_slo", 0) if redis else 0
    for model, sweep in _measured(results, "getset"):
        knee = sweep.get("highest_rate_meeting_slo", 0)
        versus = f"{knee / redis_knee:.2f}×" if redis_knee and model != "redis" else "—"
        rows.append([model, _rate(sweep.get("peak_throughput", 0)), _knee(sweep),
                     _knee_interval(sweep), _knee_runs(sweep), versus, sweep.get("slo", ""),
                     len(sweep.get("steps", []))])
    return _table(["model", "closed-loop peak", "knee (highest rate meeting the SLO)",
                   "knee lies in", "p99 of the knee's runs", "knee vs redis-server", "SLO",
                   "runs"], rows)


def _wait_table(results):
    rows = []
    for model, r in _measured(results, "wait"):
        rows.append([model, r["connections"], _throughput(r),
                     f"{r['concurrent_waits']:,.0f}", _p99(r)])
    return _table(["model", "connections", "throughput", "waits carried at once", "p99"], rows)


def _block_table(results):
    rows = []
    for model, r in _measured(results, "block"):
        a, b = r["alone"]["latency"], r["beside_block"]["latency"]
        rows.append([model, _us(a["p99"]), _us(b["p99"]), _us(a["p999"]), _us(b["p999"]),
                     _us(b["max"]), f"{b['p99'] / max(a['p99'], 1e-9):.1f}×"])
    return _table(["model", "p99 alone", "p99 beside SY.BLOCK", "p99.9 alone",
                   "p99.9 beside", "max beside", "p99 grew"], rows)


def _cpu_table(results):
    rows = []
    for model, r in _measured(results, "cpu"):
        rows.append([model, _throughput(r), f"{r['cores_used']:.2f}", _p99(r)])
    return _table(["model", "throughput", "cores used", "p99"], rows)


def _idle_table(results):
    rows = []
    for model, points in _measured(results, "idle"):
        for p in points:
            rows.append([model, p["connections"], f"{p['answered']:,} of {p['opened']:,}",
                         _kib(p["pss_bytes_per_connection"]), _kib(p["rss_bytes_per_connection"]),
                         f"{p['os_threads']:.0f}", f"{p['os_processes']:.0f}"])
    return _table(["model", "connections", "served", "PSS per connection", "RSS per connection",
                   "OS threads", "OS processes"], rows)


# -- charts -----------------------------------------------------------------------------------
def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _charts(results, folder):
    charts = []
    echo = _measured(results, "echo")
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

    getset = _measured(results, "getset")
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

    idle = _measured(results, "idle")
    if idle:
        fig, ax = plt.subplots(figsize=(11, 4))
        for model, points in idle:
            ax.plot([p["connections"] for p in points],
                    [p["pss_bytes_per_connection"] / 1024 for p in points], marker="o", label=model)
        ax.set(xscale="log", xlabel="idle connections", ylabel="KiB PSS per connection",
               title="memory per connection")
        ax.legend(fontsize=8)
        charts.append(("Memory per connection", _save(fig, folder / "memory.png")))

    block = _measured(results, "block")
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
    lines = []
    echo = [(m, pts) for m, pts in _measured(results, "echo") if m != "redis"]
    if echo:
        at = {m: pts[-1] for m, pts in echo}
        best = max(at, key=lambda m: at[m]["throughput"])
        worst = min(at, key=lambda m: at[m]["throughput"])
        conns = at[best]["connections"]
        lines.append(f"Echo at {conns} connections: {best} served the most "
                     f"({_rate(at[best]['throughput'])}), "
                     f"{at[best]['throughput'] / max(at[worst]['throughput'], 1):.1f}× {worst} "
                     f"({_rate(at[worst]['throughput'])}).")
        switches = {m: at[m]["server"]["voluntary_switches_per_request"] for m in at}
        most, least = max(switches, key=switches.get), min(switches, key=switches.get)
        lines.append(f"Per request, {most} made {switches[most]:.2f} voluntary OS context switches "
                     f"and {least} {switches[least]:.2f}; user-space switches per request: " +
                     ", ".join(f"{m} {at[m]['server']['user_switches_per_request']:.2f}" for m in at) +
                     ".")
        cpu = {m: at[m]["server"]["cpu_seconds_per_request"] for m in at}
        cheap, dear = min(cpu, key=cpu.get), max(cpu, key=cpu.get)
        lines.append(f"Server CPU per request ranged from {cpu[cheap] * 1e6:.1f} µs ({cheap}) to "
                     f"{cpu[dear] * 1e6:.1f} µs ({dear}).")
        redis = _reference_echo(results).get(conns)
        if redis:
            lines.append(f"redis-server at {conns} connections (the reference): "
                         f"{_rate(redis['throughput'])}{_limited(redis)}, p99 "
                         f"{_us(redis['latency']['p99'])}; the models' p99 there: " +
                         ", ".join(f"{m} {_us(at[m]['latency']['p99'])}" for m in at) + ".")
        limited = [m for m in at if at[m].get("client_limited")]
        if limited:
            lines.append("The load generator, not the server, was the limit for: " +
                         ", ".join(limited) + " (flagged ⚠; those figures are a floor).")
    getset = _measured(results, "getset")
    if getset:
        sweeps = {m: s for m, s in getset if m != "redis"}
        knees = {m: s.get("highest_rate_meeting_slo", 0) for m, s in sweeps.items()}
        best = max(knees, key=knees.get) if knees else None
        missed = [m for m, k in knees.items() if k == 0]
        if best and knees[best] > 0:
            others = ", ".join(f"{m} {_knee_in_words(sweeps[m])}" for m, k in knees.items()
                               if m != best and k > 0)
            slo = sweeps[best].get("slo", "the SLO").replace(":", " ≤ ", 1)
            lines.append(f"GET/SET with zipfian keys: {best} held p{slo} up to "
                         f"{_knee_in_words(sweeps[best])}" + (f"; {others}" if others else "") + ".")
        redis = _reference(results, "getset")
        if redis:
            lines.append(f"redis-server, the reference measured in the same run under the same "
                         f"load, held it up to {_knee_in_words(redis)} "
                         f"(closed-loop peak "
                         f"{_rate(redis.get('peak_throughput', 0))}): a model's knee well below "
                         f"it is the model's, not the machine's.")
        bounded = [m for m, s in getset if s.get("knee_is_lower_bound") and
                   s.get("highest_rate_meeting_slo", 0) < s.get("peak_throughput", 0)]
        if bounded:
            lines.append("The load generator stayed the limit before the knee for: " +
                         ", ".join(bounded) + " (their knees are lower bounds).")
        at_peak = [m for m, s in getset if s.get("knee_is_lower_bound") and
                   s.get("highest_rate_meeting_slo", 0) >= s.get("peak_throughput", 0) > 0]
        if at_peak:
            lines.append("Met the objective at every rate up to the closed-loop peak (the knee lies "
                         "beyond what the load generator drove): " + ", ".join(at_peak) + ".")
        if missed:
            lines.append("No rate met the SLO for: " + ", ".join(missed) + ".")
    wait = _measured(results, "wait")
    if wait:
        carried = {m: r["concurrent_waits"] for m, r in wait}
        most, least = max(carried, key=carried.get), min(carried, key=carried.get)
        lines.append(f"With a {wait[0][1]['connections']}-connection load each waiting 10 ms "
                     f"downstream, {most} carried {carried[most]:,.0f} waits at once and {least} "
                     f"only {carried[least]:,.0f}.")
    block = _measured(results, "block")
    if block:
        growth = {m: r["beside_block"]["latency"]["p99"] / max(r["alone"]["latency"]["p99"], 1e-9)
                  for m, r in block}
        worst, best = max(growth, key=growth.get), min(growth, key=growth.get)
        # Below 1× the p99 beside the blocking request was lower than alone: the two runs differ
        # by the machine's noise, not by any slowdown, which "took it to 0.4×" would misstate.
        least = (f"and to {growth[best]:.1f}× on {best}" if growth[best] >= 1 else
                 f"and did not raise it on {best} ({growth[best]:.1f}×: no slower than alone)")
        lines.append(f"One blocking request twice a second took the p99 of everyone else's fast "
                     f"GETs to {growth[worst]:.1f}× its value alone on {worst}, {least}.")
    cpu = _measured(results, "cpu")
    if cpu:
        used = {m: r["cores_used"] for m, r in cpu}
        lines.append("CPU-bound requests used " +
                     ", ".join(f"{used[m]:.2f} cores on {m}" for m in used) +
                     f" (the machine has {results['machine']['cores']}).")
    idle = _measured(results, "idle")
    if [m for m, _ in idle if m != "redis"]:
        reference = dict(idle).get("redis")
        last = {m: pts[-1] for m, pts in idle if m != "redis"}
        per = {m: p["pss_bytes_per_connection"] for m, p in last.items()}
        small, big = min(per, key=per.get), max(per, key=per.get)
        lines.append(f"Holding {last[small]['connections']:,} idle connections cost {_kib(per[small])} "
                     f"each on {small} and {_kib(per[big])} on {big}" +
                     (f" (redis-server: {_kib(reference[-1]['pss_bytes_per_connection'])})."
                      if reference else "."))
        short = [f"{m} served {p['answered']:,} of {p['opened']:,}" for m, p in last.items()
                 if p["answered"] < p["opened"]]
        if short:
            lines.append("Not every model held them all: " + "; ".join(short) + ".")
    return lines


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
    md += ["", "## Machine", ""] + _machine_lines(results)
    md += ["", "## Switch cost", ""] + _switchcost_table(results.get("switchcost", {}))
    sections = [
        ("echo", "1. Echo at rising connection counts (closed loop)", _echo_table),
        ("getset", "2. GET/SET mix, zipfian keys, swept to the knee", _getset_table),
        ("wait", "3. A 10 ms downstream wait per request", _wait_table),
        ("block", "4. A few blocking requests among many fast ones", _block_table),
        ("cpu", "5. CPU-bound requests", _cpu_table),
        ("idle", "6. Idle connections: memory per connection", _idle_table),
    ]
    for key, title, table in sections:
        if _measured(results, key):
            md += ["", f"## {title}", ""] + table(results)
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
