#!/usr/bin/env python3
"""Writes the Grafana dashboards of dashboards/ (overview.json, model.json).

The JSON files are what Grafana loads (deploy/ provisions this folder); this script is where they
are edited: change it, run `python3 dashboards/generate.py`, commit both.

The model is not a label the servers put on each series: it is in switchyard_build_info{model}.
Every server query therefore joins on build_info (`* on(job, instance) group_left(model)`), which
works whether or not the scrape config also labels the target with its model. The load
generator's series have no build_info: they carry the `model` target label that the scrape
config gives each load-generator target.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def per_model(expr, by="model", model_filter='model=~"$model"'):
    """sum by (model, ...) of `expr` for the servers chosen in $model."""
    return (f"sum by ({by}) ({expr} * on(job, instance) group_left(model) "
            f"switchyard_build_info{{{model_filter}}})")


def rate(metric):
    return f"rate({metric}[{RATE}])"


def requests_per_second(model_filter='model=~"$model"'):
    return per_model(rate("switchyard_requests_total"), model_filter=model_filter)


def per_request(metric, by="model", model_filter='model=~"$model"'):
    """A counter's rate divided by the request rate of the same model: cost per request."""
    return (f"{per_model(rate(metric), by, model_filter)} / on(model) group_left "
            f"{requests_per_second(model_filter)}")


def quantile(q, metric, by="model", model_filter='model=~"$model"'):
    inner = per_model(rate(f"{metric}_bucket"), f"{by}, le", model_filter)
    return f"histogram_quantile({q}, {inner})"


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


class Board:
    def __init__(self):
        self.panels = []
        self.y = 0
        self.x = 0
        self.next_id = 1

    def row(self, title):
        if self.x:
            self.y += 8
            self.x = 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def panel(self, title, description, unit, targets, width=12):
        if self.x + width > 24:
            self.y += 8
            self.x = 0
        refs = "ABCDEFGH"
        self.panels.append({
            "type": "timeseries",
            "title": title,
            "description": description,
            "id": self.next_id,
            "datasource": DS,
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit, "min": 0,
                                         "custom": {"lineWidth": 1, "fillOpacity": 0}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom",
                                   "calcs": ["mean", "lastNotNull"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": [target(e, l, refs[i]) for i, (e, l) in enumerate(targets)],
        })
        self.next_id += 1
        self.x += width


def variables(multi_model):
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0},
        {"name": "model", "label": "Model", "type": "query", "datasource": DS,
         "query": "label_values(switchyard_build_info, model)",
         "definition": "label_values(switchyard_build_info, model)",
         "refresh": 2, "sort": 1, "multi": multi_model, "includeAll": multi_model,
         "current": {}, "hide": 0},
    ]


def dashboard(uid, title, description, board, multi_model, links):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["switchyard"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": variables(multi_model)},
        "annotations": {"list": []},
        "links": links,
        "panels": board.panels,
    }


def overview():
    b = Board()
    b.row("Throughput and latency")
    b.panel("Throughput", "Requests served per second by each model's server, every command.",
            "reqps", [(requests_per_second(), "{{model}}")], width=8)
    b.panel("Latency inside the server",
            "Service time from parsed request to reply (switchyard_request_duration_seconds), "
            "every command. It leaves out time queued in the kernel and waiting to be scheduled: "
            "compare with the load generator's view.",
            "s", [(quantile(0.5, "switchyard_request_duration_seconds"), "{{model}} p50"),
                  (quantile(0.99, "switchyard_request_duration_seconds"), "{{model}} p99"),
                  (quantile(0.999, "switchyard_request_duration_seconds"), "{{model}} p99.9")],
            width=8)
    b.panel("Latency seen by the load generator",
            "From each request's intended send time to its reply (coordinated omission "
            "corrected), per model under load. Only the model under load has data at a time.",
            "s", [(f'histogram_quantile({q}, sum by (model, le) (rate('
                   f'switchyard_loadgen_latency_seconds_bucket{{model=~"$model"}}[{RATE}])))',
                   f"{{{{model}}}} {name}")
                  for q, name in ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9"))],
            width=8)
    b.row("Cost per request")
    b.panel("OS context switches per request",
            "Kernel context switches of every thread of the server, per request served. "
            "Voluntary: a thread blocked (read, sleep, lock). Involuntary: the kernel took the CPU "
            "away (time slice over, a higher-priority task woke).",
            "short", [(per_request("switchyard_os_context_switches_total", "model, kind"),
                       "{{model}} {{kind}}")])
    b.panel("User-space switches per request",
            "Suspensions of fibers, coroutines, goroutines, asyncio tasks or greenlets per "
            "request: the switches that replace kernel ones in the user-scheduled models (0 for "
            "OS-scheduled models; Go's count is sampled, docs/metrics.md).",
            "short", [(per_request("switchyard_user_switches_total"), "{{model}}")])
    b.panel("Run-queue wait per request",
            "Time the server's threads were runnable but waited for a CPU (schedstat), per "
            "request: the price of more runnable threads than cores.",
            "s", [(per_request("switchyard_run_queue_wait_seconds_total"), "{{model}}")])
    b.panel("CPU per request", "CPU time of the whole server (user + system) per request served.",
            "s", [(per_request("switchyard_cpu_seconds_total"), "{{model}}")])
    b.row("Memory and connections")
    b.panel("Memory per connection",
            "PSS of the whole server divided by its open connections (at least 1): with many "
            "idle connections it tends to what one connection costs.",
            "bytes",
            [(per_model('switchyard_memory_bytes{kind="pss"}') + " / on(model) clamp_min(" +
              per_model("switchyard_connections_active") + ", 1)", "{{model}}")],
            width=8)
    b.panel("Connections open", "Connections each server holds open now.", "short",
            [(per_model("switchyard_connections_active"), "{{model}}")], width=8)
    b.panel("Errors", "Requests answered with an error, per second, by kind.", "reqps",
            [(per_model(rate("switchyard_request_errors_total"), "model, kind"),
              "{{model}} {{kind}}")],
            width=8)
    return dashboard(
        "switchyard-overview", "Switchyard: models side by side",
        "Every model's server under the same load: throughput, latency, what each request costs "
        "in switches, CPU and memory.",
        b, True, [{"title": "One model", "type": "link", "url": "/d/switchyard-model",
                   "keepTime": True, "includeVars": False}])


def model():
    one = 'model="$model"'
    b = Board()
    b.row("Requests")
    b.panel("Requests by command", "Requests served per second, by command.", "reqps",
            [(per_model(rate("switchyard_requests_total"), "model, command", one),
              "{{command}}")])
    b.panel("Latency inside the server by command", "p50, p99 and p99.9 of service time.", "s",
            [(quantile(q, "switchyard_request_duration_seconds", "model, command", one),
              f"{{{{command}}}} {name}")
             for q, name in ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9"))])
    b.panel("Errors by kind", "Requests answered with an error, per second.", "reqps",
            [(per_model(rate("switchyard_request_errors_total"), "model, kind", one), "{{kind}}")])
    b.panel("Load generator", "Target and achieved rate of the load generator on this model.",
            "reqps", [(f'sum(switchyard_loadgen_target_rate{{{one}}})', "target"),
                      (f'sum(switchyard_loadgen_achieved_rate{{{one}}})', "achieved")])
    b.row("Scheduling")
    b.panel("Switches per second",
            "Kernel context switches (voluntary, involuntary) and user-space switches "
            "(suspensions of fibers, coroutines, goroutines, asyncio tasks, greenlets), per "
            "second.",
            "ops", [(per_model(rate("switchyard_os_context_switches_total"), "model, kind", one),
                     "os {{kind}}"),
                    (per_model(rate("switchyard_user_switches_total"), "model", one), "user")])
    b.panel("Run-queue wait",
            "Seconds per second the server's threads spent runnable, waiting for a CPU: 1 means "
            "one thread waited all the time.",
            "s", [(per_model(rate("switchyard_run_queue_wait_seconds_total"), "model", one),
                   "waiting")])
    b.panel("CPU", "CPU seconds per second of the whole server, by mode.", "s",
            [(per_model(rate("switchyard_cpu_seconds_total"), "model, mode", one), "{{mode}}")])
    b.panel("Units alive",
            "Tasks serving connections (coroutines, fibers, threads, processes or gRPC calls), OS "
            "threads and processes.",
            "short", [(per_model("switchyard_tasks_active", "model", one), "tasks"),
                      (per_model("switchyard_os_threads", "model", one), "OS threads"),
                      (per_model("switchyard_os_processes", "model", one), "OS processes")])
    b.panel("Garbage collection",
            "Collections finished per second and the seconds per second the program was paused "
            "for them: Go's collector in the go peer, Python's in the Python peers; 0 for the "
            "C++ models, which have none.",
            "short", [(per_model(rate("switchyard_gc_cycles_total"), "model", one), "cycles/s"),
                      (per_model(rate("switchyard_gc_pause_seconds_total"), "model", one),
                       "paused s/s")])
    b.row("Memory and connections")
    b.panel("Memory", "Resident (RSS) and proportional (PSS: shared pages counted once) memory.",
            "bytes", [(per_model("switchyard_memory_bytes", "model, kind", one), "{{kind}}")])
    b.panel("Connections", "Open now, accepted and rejected per second.", "short",
            [(per_model("switchyard_connections_active", "model", one), "open"),
             (per_model(rate("switchyard_connections_accepted_total"), "model", one),
              "accepted/s"),
             (per_model(rate("switchyard_connections_rejected_total"), "model", one),
              "rejected/s")])
    return dashboard(
        "switchyard-model", "Switchyard: one model",
        "One model's server in detail: per command, scheduling, memory.", b, False,
        [{"title": "Models side by side", "type": "link", "url": "/d/switchyard-overview",
          "keepTime": True, "includeVars": False}])


if __name__ == "__main__":
    for name, board in (("overview.json", overview()), ("model.json", model())):
        (HERE / name).write_text(json.dumps(board, indent=2) + "\n")
