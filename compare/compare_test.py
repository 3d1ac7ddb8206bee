"""End-to-end check of `switchyard compare --quick`: every model, grpc included (through the load
generator's gRPC mode), measured in every scenario without errors, the switch-cost table present,
the study's table first after the summary with its raw rows' figures, each idle connection taken
apart (the kernel's account of every socket, the stacks of the models whose units have their own),
every chart written, and the report naming every model.

    /usr/bin/python3 -m compare.compare_test --binary BIN
    (from the repository root; ctest Compare.QuickReportHasEveryModelAndChart)
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import report as report_module
from . import study as study_module
from .scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
CHARTS = ["echo.png", "switches.png", "cpu_per_request.png", "latency_throughput.png",
          "memory.png", "blocking.png"]


def grpc_problems(model):
    """grpc is measured like the others, not explained away: real throughput from answered calls,
    no error statuses, the server's own counters moving, and idle connections actually held."""
    problems, scenarios = [], model["scenarios"]
    for point in scenarios.get("echo", []):
        if point.get("throughput", 0) <= 0 or point.get("errors", 0) or point.get("failed", 0):
            problems.append(f"grpc echo at {point.get('connections')} connections: "
                            f"{point.get('throughput')}/s, {point.get('errors')} errors, "
                            f"{point.get('failed')} failed")
        elif point["server"]["requests"] <= 0:
            problems.append("grpc echo: the server counted no requests")
    for name in ("wait", "cpu"):
        run = scenarios.get(name, {})
        if run and (run.get("throughput", 0) <= 0 or run.get("errors", 0)):
            problems.append(f"grpc {name}: {run.get('throughput')}/s, {run.get('errors')} errors")
    for point in scenarios.get("idle", []):
        if point["answered"] < point["connections"]:
            problems.append(f"grpc idle: {point['answered']} of {point['connections']} held")
    if model["skipped"]:
        problems.append(f"grpc skipped something: {model['skipped']}")
    return problems


def idle_problems(name, points):
    """The idle scenario takes each connection apart: ss saw every socket the server holds, and a
    model whose units have stacks of their own had them found, one a connection."""
    problems = []
    for point in points or []:
        sockets = point.get("kernel", {}).get("socket_buffers", {})
        if sockets.get("sockets", 0) < point["answered"]:
            problems.append(f"{name} idle at {point['connections']}: ss saw {sockets} for "
                            f"{point['answered']} connections")
        stacks = point.get("unit_stacks")
        stack_mapped = point.get("made_of", {}).get("unit_stack_mapped")
        if stack_mapped and "bytes_per_stack" not in (stacks or {}):
            problems.append(f"{name} idle at {point['connections']}: its stacks were not found "
                            f"({stacks})")
    return problems


def sweep_problems(name, sweep):
    """The sweep states its knee with where it lies, and keeps every run it made."""
    if not sweep:
        return []
    problems = []
    decisions = sweep.get("decisions", [])
    if not decisions:
        problems.append(f"{name} getset: no decisions in the sweep")
    runs = sum(len(d.get("observed_seconds", [])) + d.get("client_limited_runs", 0)
               for d in decisions)
    if runs != len(sweep.get("steps", [])):
        problems.append(f"{name} getset: {runs} runs decided, {len(sweep.get('steps', []))} kept")
    knee, missed = sweep.get("highest_rate_meeting_slo", 0), sweep.get("lowest_rate_missing_slo", 0)
    if missed and missed <= knee:
        problems.append(f"{name} getset: missed at {missed}/s, below the knee {knee}/s")
    if sweep.get("knee_is_lower_bound") and not sweep.get("knee_note"):
        problems.append(f"{name} getset: a lower-bound knee without a note saying why")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results:
        done = subprocess.run([sys.executable, "-m", "compare", "--binary", args.binary,
                               "--quick", "--results", results], timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0:
            sys.exit(f"compare exited {done.returncode}")
        latest = Path(results) / "latest"
        data = json.loads((latest / "results.json").read_text())
        problems = []
        if "results" not in data.get("switchcost", {}):
            problems.append(f"no switch-cost figures: {data.get('switchcost')}")
        report = (latest / "report.md").read_text()
        if "- steal (CPU time the hypervisor gave to others" not in report:
            problems.append("the report's machine section does not say how much was stolen")
        if "- delayed-ACK stall" not in report:
            problems.append("the report does not say whether any run showed Nagle's stalls")
        elif "- delayed-ACK stall signature" in report:
            problems.append("a model's replies were held by Nagle's algorithm: " +
                            report.split("- delayed-ACK stall signature", 1)[1].split("\n")[0])
        headings = re.findall(r"^## (.*)$", report, re.MULTILINE)
        if headings[1:2] != [study_module.TITLE]:
            problems.append(f"the report's first section after the summary is {headings[1:2]}, "
                            "not the study's table")
        elif "Not answered in this run" in report:
            problems.append("the report's study section has no answers: " +
                            report.split("Not answered in this run", 1)[1].split("\n")[0])
        study = data.get("switchcost", {}).get("study", {})
        for row in study.get("rows", []):
            cells = [row[name]["text"] for name in ("switch", "create", "memory")]
            if f"| {row['kind']} |" not in report or not report.split(
                    f"| {row['kind']} |", 1)[1].split("\n")[0].endswith(" | ".join(cells) + " |"):
                problems.append(f"the study's row {row['kind']} is not printed with its figures")
            for name in ("switch", "create", "memory"):
                figure = row[name]
                if figure["measured"] and not any(
                        r["value"] == figure["value"] for r in data["switchcost"]["results"]
                        if (r["unit"], r["operation"], r["method"], r["pinned"]) == (
                            figure["unit"], figure["operation"], figure["method"],
                            figure["pinned"])):
                    problems.append(f"the study's {row['kind']} {name} is not its raw row's")
        names = [model["model"] for model in data["models"]]
        listing = subprocess.run([args.binary, "serve", "--list-models", "--format=json"],
                                 capture_output=True, text=True, check=True).stdout
        protocols = {model["name"]: model["protocol"] for model in json.loads(listing)}
        missing = [name for name in protocols if name not in names]
        if missing:
            problems.append(f"registered models not in the run: {', '.join(missing)}")
        peers = [m["name"] for m in json.loads(listing) if m.get("runtime", "c++") != "c++"]
        if peers and f"## {report_module.SEED_TITLE}" not in report:
            problems.append("the peers ran but the report has no section setting them side by side")
        if shutil.which("redis-server") and "redis" not in names:
            problems.append("redis-server is installed but is not the reference row")
        elif "redis-server, the reference measured in the same run" not in report:
            problems.append("the reading does not set the knees beside redis-server's")
        for model in data["models"]:
            name = model["model"]
            if name not in report:
                problems.append(f"{name} missing from the report")
            expected = [s.name for s in SCENARIOS if s.redis or name != "redis"]
            for scenario in expected:
                if scenario not in model["scenarios"]:
                    problems.append(f"{name}/{scenario} not measured: {model['skipped']}")
            problems += sweep_problems(name, model["scenarios"].get("getset"))
            problems += idle_problems(name, model["scenarios"].get("idle"))
            problems += grpc_problems(model) if protocols.get(name) == "grpc" else []
        if report_module.ANATOMY_TITLE not in report:
            problems.append("the idle section does not take a connection's memory apart")
        for chart in CHARTS:
            path = latest / chart
            if not path.exists() or path.stat().st_size < 1000:
                problems.append(f"chart {chart} missing")
        html = (latest / "report.html").read_text()
        if html.count("data:image/png;base64,") != len(CHARTS):
            problems.append("report.html does not inline every chart")
        if problems:
            sys.exit("\n".join(problems))
        print(f"compare --quick: {len(data['models'])} models, {len(CHARTS)} charts, "
              f"{data['elapsed_seconds']:.0f} s")


if __name__ == "__main__":
    main()
