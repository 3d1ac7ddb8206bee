#!/usr/bin/env python3
"""End to end: a real Prometheus scrapes real servers under load, and every query of every
dashboard must return data.

Starts the servers of MODELS and PEERS below on free loopback ports, a Prometheus (Debian's
package, run directly with its own config and a temporary storage directory, never the system
service) scraping them every second with each target labelled with its model, and drives them with the
load generator (`switchyard load --metrics-port`, also scraped; the first model's load is one run
of two workers, `--workers 2`, each scraped on its own). Then it reads every
expression of dashboards/*.json, substitutes Grafana's variables, evaluates it through
Prometheus's HTTP API and fails if one errors or returns nothing. The dashboards' structure is
checked too: fixed uid, datasource and model variables, rows, a unit on every panel.

With --against URL it starts nothing and asks a running Prometheus instead (deploy/smoke.sh
points it at the compose stack's): every query, for every model, as a range query over the last
--window, as a Grafana panel showing that window would; a series with any point there counts.
The models are those it scrapes (its `switchyard` job's targets) unless --models names them.

Usage: dashboards_test.py --switchyard BIN --prometheus BIN [--dashboards DIR]
       dashboards_test.py --against http://127.0.0.1:9090 [--window 10m] [--scrape-seconds 5]
                          [--models M,M...]
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

# A user-scheduled model, a thread per connection, processes summed by one endpoint, and two peers
# (a program in its own runtime writing the shared metrics slots): one of each kind of metrics
# source (a chosen few, not the model list). A sanitizer build has no peers: --no-peers.
MODELS = ("coroutine", "thread_per_conn", "prefork")
PEERS = ("go", "asyncio")
LIGHT_FLAGS = {"prefork": ["--workers", "8"]}
SCRAPE_SECONDS = 1
LOAD_SECONDS = 12
LOAD_RATE = 2000  # each model's, in total
DISTRIBUTED = 2  # workers of the first model's run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, model):
    process = subprocess.Popen(
        [binary, "serve", "--model", model, "--port", "0", "--metrics-port", "0", "--quiet"]
        + LIGHT_FLAGS.get(model, []),
        stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # "switchyard ready: model=M port=P metrics_port=Q"
    match = re.search(r"port=(\d+) metrics_port=(\d+)", line)
    if not match:
        process.kill()
        sys.exit(f"{model} did not get ready; it printed: {line!r}")
    return process, int(match.group(1)), int(match.group(2))


def query(base, expr, window_seconds=None):
    """An instant query, or a range query over the last window_seconds, to the Prometheus at
    `base` (its URL); Prometheus's JSON answer."""
    if window_seconds is None:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    else:
        end = time.time()
        url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": end - window_seconds, "end": end,
             "step": max(1, window_seconds // 200)})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        # A bad query is a 400 with a JSON body; a Prometheus still starting answers 503 with
        # plain text ("Service Unavailable").
        body = error.read()
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": f"HTTP {error.code}: {body[:200]!r}"}


def scraped_models(base):
    """The model label of every target of the Prometheus's switchyard job (its scrape config is
    generated from the model registry: deploy/generate.py)."""
    answer = query(base, 'up{job="switchyard"}')
    results = answer.get("data", {}).get("result", [])
    models = sorted({result["metric"].get("model", "") for result in results})
    if answer.get("status") != "success" or not models or "" in models:
        sys.exit(f"{base} scrapes no switchyard target labelled with its model: {answer}")
    return models


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def check_structure(path, dashboard):
    problems = []
    if not re.fullmatch(r"switchyard-[a-z-]+", dashboard.get("uid", "")):
        problems.append("no fixed uid")
    names = {v["name"]: v for v in dashboard["templating"]["list"]}
    if names.get("datasource", {}).get("type") != "datasource":
        problems.append("no datasource variable")
    if "model" not in names:
        problems.append("no model variable")
    if not any(p["type"] == "row" for p in dashboard["panels"]):
        problems.append("no rows")
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"panel {panel['title']!r} has no unit")
        for target in panel.get("targets", []):
            if "rate(" in target["expr"] and "$__rate_interval" not in target["expr"]:
                problems.append(f"panel {panel['title']!r}: a rate without $__rate_interval")
    return [f"{path.name}: {p}" for p in problems]


def substitute(expr, models, scrape_seconds):
    # What Grafana does before sending a query: a multi-value variable becomes a regex
    # alternation; $__rate_interval is at least four scrape intervals.
    expr = expr.replace("${model}", "$model").replace("$model", "|".join(models))
    return (expr.replace("$__rate_interval", f"{4 * scrape_seconds}s")
            .replace("$__interval", f"{scrape_seconds}s"))


def check_queries(dashboards, prometheus, models, scrape_seconds, window_seconds=None):
    """Evaluates every query of every dashboard; returns (how many, problems). The overview's
    queries (a regex on the model) are asked for every model at once, the drill-down's for each
    model alone, as a user picking it would."""
    evaluated, problems = 0, []
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for chosen in ([models] if "=~" in expr else [[m] for m in models]):
                    result = query(prometheus, substitute(expr, chosen, scrape_seconds),
                                   window_seconds)
                    evaluated += 1
                    where = f"{path.name} / {panel['title']} / {target['refId']} {chosen}"
                    if result.get("status") != "success":
                        problems.append(f"{where}: {result.get('error')}")
                    elif not result["data"]["result"]:
                        problems.append(f"{where}: no data")
    return evaluated, problems


def check_distributed_sum(dashboards, prometheus, model):
    """The load generator's panels sum the workers of a run: the target rate its panel shows for
    `model`, loaded by DISTRIBUTED workers each with its share, is the run's whole rate."""
    problems, checked = [], 0
    for path in dashboards:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                if "switchyard_loadgen_target_rate" not in target["expr"]:
                    continue
                checked += 1
                where = f"{path.name} / {panel['title']} / {target['refId']}"
                answer = query(prometheus, substitute(target["expr"], [model], SCRAPE_SECONDS))
                values = [float(r["value"][1]) for r in answer.get("data", {}).get("result", [])]
                if values != [LOAD_RATE]:
                    problems.append(f"{where}: {values} for the {DISTRIBUTED} workers of "
                                    f"{model}'s run, not one series of {LOAD_RATE}")
    workers = query(prometheus, f'count(switchyard_loadgen_target_rate{{model="{model}"}})')
    if workers.get("data", {}).get("result", [{}])[0].get("value", [0, "0"])[1] != str(DISTRIBUTED):
        problems.append(f"{model}'s run: not {DISTRIBUTED} worker series: {workers}")
    if not checked:
        problems.append("no panel shows switchyard_loadgen_target_rate")
    return problems


def check_model_variable(dashboards, prometheus, models):
    """The model variable offers every model served: its label_values() query, asked as Grafana's
    Prometheus data source asks it (the series API)."""
    problems = []
    for path in dashboards:
        variable = next(v for v in json.loads(path.read_text())["templating"]["list"]
                        if v["name"] == "model")
        match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"])
        if not match:
            problems.append(f"{path.name}: model variable query {variable['query']!r}")
            continue
        metric, label = match.groups()
        url = f"{prometheus}/api/v1/series?" + urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(url, timeout=10) as response:
            offered = {series.get(label) for series in json.load(response)["data"]}
        missing = [m for m in models if m not in offered]
        if missing:
            problems.append(f"{path.name}: the model variable does not offer {', '.join(missing)}")
    return problems


def seconds_of(duration):
    match = re.fullmatch(r"(\d+)([smh])", duration)
    if not match:
        sys.exit(f"--window: {duration!r} is not a duration like 90s, 10m or 1h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--switchyard")
    parser.add_argument("--prometheus")
    parser.add_argument("--dashboards", default=str(pathlib.Path(__file__).resolve().parent))
    parser.add_argument("--against", help="a running Prometheus's base URL: start nothing")
    parser.add_argument("--window", default="10m", help="with --against: how far back to look")
    parser.add_argument("--scrape-seconds", type=int, default=5, help="with --against")
    parser.add_argument("--models", help="with --against, comma-separated (default: every model "
                        "the Prometheus scrapes in its switchyard job)")
    parser.add_argument("--no-peers", action="store_true",
                        help="start only the C++ models (a sanitizer build builds no peers)")
    args = parser.parse_args()
    if not args.against and not (args.switchyard and args.prometheus):
        parser.error("give --switchyard and --prometheus, or --against")

    dashboards = sorted(pathlib.Path(args.dashboards).glob("*.json"))
    if not dashboards:
        sys.exit(f"no dashboards in {args.dashboards}")
    problems = []
    for path in dashboards:
        problems += check_structure(path, json.loads(path.read_text()))

    if args.against:
        window = seconds_of(args.window)
        base = args.against.rstrip("/")
        models = args.models.split(",") if args.models else scraped_models(base)
        evaluated, found = check_queries(dashboards, base, models, args.scrape_seconds, window)
        found += check_model_variable(dashboards, base, models)
        print(f"evaluated {evaluated} queries over the last {args.window} of {args.against}")
        return report(problems + found)

    models = MODELS + (() if args.no_peers else PEERS)
    workdir = tempfile.mkdtemp(prefix="switchyard-dashboards-")
    children = []
    try:
        servers = {}
        for model in models:
            process, port, metrics_port = start_server(args.switchyard, model)
            children.append(process)
            servers[model] = (port, metrics_port)

        # One load-generator process a model, or DISTRIBUTED for the first: each its port.
        loadgen_ports = {model: [free_port() for _ in range(DISTRIBUTED if i == 0 else 1)]
                         for i, model in enumerate(models)}
        scrape_configs = [{
            "job_name": "switchyard",
            "static_configs": [{"targets": [f"127.0.0.1:{m}"], "labels": {"model": model}}
                               for model, (_, m) in servers.items()],
        }, {
            "job_name": "switchyard-load",
            "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports],
                                "labels": {"model": model}}
                               for model, ports in loadgen_ports.items()],
        }]
        config = {"global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                             "evaluation_interval": f"{SCRAPE_SECONDS}s"},
                  "scrape_configs": scrape_configs}
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        prometheus_port = free_port()
        prometheus = f"http://127.0.0.1:{prometheus_port}"
        children.append(subprocess.Popen(
            [args.prometheus, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prometheus.log"), "w")))

        def ready():
            try:
                return query(prometheus, "up")["status"] == "success"
            except OSError:
                return False
        wait_for(ready, 30, "Prometheus to answer")

        # Load on every server at once, until the queries are done (stopped in `finally`): a
        # rate needs samples in its last window.
        load = []
        start_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
        for model, (port, _) in servers.items():
            for index, metrics_port in enumerate(loadgen_ports[model]):
                command = [args.switchyard, "load", "--port", str(port), "--connections", "4",
                           "--threads", "1", "--rate", str(LOAD_RATE), "--duration", "5m",
                           "--warmup", "0", "--mix", "get:50,set:50", "--quiet",
                           "--metrics-port", str(metrics_port)]
                if len(loadgen_ports[model]) > 1:
                    command += ["--workers", str(len(loadgen_ports[model])),
                                "--worker-index", str(index), "--start-at", start_at]
                load.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
        children += load
        print(f"load: switchyard load on {', '.join(models)}", flush=True)
        up = f"sum(up{{job='switchyard'}})"
        wait_for(lambda: (query(prometheus, up)["data"]["result"] or [{"value": [0, "0"]}]
                          )[0]["value"][1] == str(len(models)), 20, "every server target up")
        time.sleep(LOAD_SECONDS - 2)

        evaluated, found = check_queries(dashboards, prometheus, models, SCRAPE_SECONDS)
        problems += found + check_model_variable(dashboards, prometheus, models)
        problems += check_distributed_sum(dashboards, prometheus, models[0])
        print(f"evaluated {evaluated} queries")
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    return report(problems)


def report(problems):
    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
