#!/usr/bin/env python3
"""End to end: a real Prometheus scrapes real servers under load, and every query of every
dashboard must return data.

Starts three servers (coroutine, thread_per_conn, prefork) on free loopback ports, a Prometheus (Debian's
package, run directly with its own config and a temporary storage directory, never the system
service) scraping them every second with each target labelled with its model, and drives them
with the load generator (`switchyard load --metrics-port`, also scraped) or, in a build without
it, redis-benchmark. Then it reads every expression of dashboards/*.json, substitutes Grafana's
variables, evaluates it through Prometheus's HTTP API and fails if one errors or returns nothing.
The dashboards' structure is checked too: fixed uid, datasource and model variables, rows, a unit
on every panel.

Usage: dashboards_test.py --switchyard BIN --prometheus BIN [--dashboards DIR]
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

# A user-scheduled model, a thread per connection, and processes summed by one endpoint.
MODELS = ("coroutine", "thread_per_conn", "prefork")
LIGHT_FLAGS = {"prefork": ["--workers", "8"]}
SCRAPE_SECONDS = 1
LOAD_SECONDS = 12


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


def has_load_generator(binary):
    """True once `switchyard load` is built in (its subcommand is listed in --help)."""
    usage = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return re.search(r"^\s+load\b", usage, re.MULTILINE) is not None


def query(prometheus, expr):
    url = f"http://127.0.0.1:{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:  # a bad query is a 400 with a JSON body
        return json.load(error)


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


def substitute(expr, models):
    # What Grafana does before sending a query: a multi-value variable becomes a regex
    # alternation; $__rate_interval is at least four scrape intervals.
    expr = expr.replace("${model}", "$model").replace("$model", "|".join(models))
    return (expr.replace("$__rate_interval", f"{4 * SCRAPE_SECONDS}s")
            .replace("$__interval", f"{SCRAPE_SECONDS}s"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--switchyard", required=True)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--dashboards", default=str(pathlib.Path(__file__).resolve().parent))
    args = parser.parse_args()

    dashboards = sorted(pathlib.Path(args.dashboards).glob("*.json"))
    if not dashboards:
        sys.exit(f"no dashboards in {args.dashboards}")
    problems = []
    for path in dashboards:
        problems += check_structure(path, json.loads(path.read_text()))

    workdir = tempfile.mkdtemp(prefix="switchyard-dashboards-")
    children = []
    try:
        servers = {}
        for model in MODELS:
            process, port, metrics_port = start_server(args.switchyard, model)
            children.append(process)
            servers[model] = (port, metrics_port)

        loadgen = has_load_generator(args.switchyard)
        loadgen_ports = {model: free_port() for model in MODELS} if loadgen else {}
        scrape_configs = [{
            "job_name": "switchyard",
            "static_configs": [{"targets": [f"127.0.0.1:{m}"], "labels": {"model": model}}
                               for model, (_, m) in servers.items()],
        }]
        if loadgen:
            scrape_configs.append({
                "job_name": "switchyard-load",
                "static_configs": [{"targets": [f"127.0.0.1:{p}"], "labels": {"model": model}}
                                   for model, p in loadgen_ports.items()],
            })
        config = {"global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                             "evaluation_interval": f"{SCRAPE_SECONDS}s"},
                  "scrape_configs": scrape_configs}
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        prometheus_port = free_port()
        children.append(subprocess.Popen(
            [args.prometheus, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prometheus.log"), "w")))

        def ready():
            try:
                return query(prometheus_port, "up")["status"] == "success"
            except OSError:
                return False
        wait_for(ready, 30, "Prometheus to answer")

        # Load on every server at once, until the queries are done (stopped in `finally`): a
        # rate needs samples in its last window.
        load = []
        for model, (port, _) in servers.items():
            if loadgen:
                command = [args.switchyard, "load", "--port", str(port), "--connections", "4",
                           "--threads", "1", "--rate", "2000", "--duration", "5m",
                           "--warmup", "0", "--mix", "get:50,set:50", "--quiet",
                           "--metrics-port", str(loadgen_ports[model])]
            else:
                command = ["redis-benchmark", "-p", str(port), "-c", "4", "-n", "2000000000",
                           "-t", "set,get", "-q"]
            load.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))
        children += load
        print(f"load: {'switchyard load' if loadgen else 'redis-benchmark (no load generator)'}"
              f" on {', '.join(MODELS)}", flush=True)
        up = f"sum(up{{job='switchyard'}})"
        wait_for(lambda: (query(prometheus_port, up)["data"]["result"] or [{"value": [0, "0"]}]
                          )[0]["value"][1] == str(len(MODELS)), 20, "every server target up")
        time.sleep(LOAD_SECONDS - 2)

        evaluated = skipped = 0
        for path in dashboards:
            dashboard = json.loads(path.read_text())
            for panel in panels(dashboard):
                for target in panel.get("targets", []):
                    expr = target["expr"]
                    if "switchyard_loadgen_" in expr and not loadgen:
                        skipped += 1
                        continue
                    # The overview compares the models; the drill-down shows one at a time.
                    for models in ([MODELS] if "=~" in expr else [[m] for m in MODELS]):
                        result = query(prometheus_port, substitute(expr, models))
                        evaluated += 1
                        where = f"{path.name} / {panel['title']} / {target['refId']} {models}"
                        if result.get("status") != "success":
                            problems.append(f"{where}: {result.get('error')}")
                        elif not result["data"]["result"]:
                            problems.append(f"{where}: no data")
        print(f"evaluated {evaluated} queries"
              + (f"; skipped {skipped} load-generator queries (no `switchyard load` in this build)"
                 if skipped else ""))
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

    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
