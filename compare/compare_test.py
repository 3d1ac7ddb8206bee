#!/usr/bin/python3
"""End-to-end check of `switchyard compare --quick`: every RESP model measured in every scenario,
the switch-cost table present, every chart written, and the report naming every model."""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHARTS = ["echo.png", "switches.png", "cpu_per_request.png", "latency_throughput.png",
          "memory.png", "blocking.png"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results:
        done = subprocess.run([sys.executable, str(HERE / "compare.py"), "--binary", args.binary,
                               "--quick", "--results", results], timeout=900)
        if done.returncode != 0:
            sys.exit(f"compare exited {done.returncode}")
        latest = Path(results) / "latest"
        data = json.loads((latest / "results.json").read_text())
        problems = []
        if "results" not in data.get("switchcost", {}):
            problems.append(f"no switch-cost figures: {data.get('switchcost')}")
        report = (latest / "report.md").read_text()
        for model in data["models"]:
            name = model["model"]
            if name not in report:
                problems.append(f"{name} missing from the report")
            if name == "grpc":
                if "gRPC" not in model["skipped"].get("all", ""):
                    problems.append("grpc neither measured nor explained")
                continue
            for scenario in ["echo", "getset", "wait", "block", "cpu", "idle"]:
                if scenario not in model["scenarios"]:
                    problems.append(f"{name}/{scenario} not measured: {model['skipped']}")
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
