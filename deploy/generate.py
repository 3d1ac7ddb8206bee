#!/usr/bin/python3
"""Writes the model-dependent parts of the compose stack and of the Kubernetes manifests from the
model registry, and the load cycle's scenarios from their declarations.

docker-compose.yml and prometheus/prometheus.yml cannot ask the binary which models exist: compose
and Prometheus read them before any switchyard runs (compose builds the binary inside the image).
So they are committed, and the lines that name models sit between markers,

    # BEGIN generated NAME: ...
    # END generated NAME

which this script rewrites from `switchyard serve --list-models --format=json`. The load cycle
(load-cycle.sh) runs in an image without Python, so its list of scenarios is written the same way,
from each scenario's cycle() in compare/scenarios.py, and kubernetes/servers.yaml's Deployment and
Service a model likewise, since kubectl reads it as committed. Everything outside the markers is
edited by hand as usual. After adding a model or a scenario (or editing the templates below), run

    deploy/generate.py [--switchyard build/release/cli/switchyard]

and commit the result; `--check` (ctest Registry.DeployFilesMatch) writes nothing and fails with a
diff while a file differs from what the registry and the declarations give.

Ports in the compose stack: model number N, its place in the registry from 1, serves on 6380+N and
its metrics on 9180+N; the load generator serves its metrics while it loads model N on
LOAD_METRICS_BASE+N, 9190+N while there are at most ten models, the next round ten above the
servers' metrics ports beyond. In Kubernetes every model keeps 6380 and 9180 (a pod each).
"""

import argparse
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
sys.path.insert(0, str(ROOT))
from compare.scenarios import cycle_runs  # noqa: E402
SERVICE_PORT_BASE = 6380
METRICS_PORT_BASE = 9180
# In Kubernetes each pod has a network of its own and each model a Service of its own, so every
# model keeps the default ports.
KUBERNETES_SERVICE_PORT = 6380
KUBERNETES_METRICS_PORT = 9180

MARKER = re.compile(r"^(?P<indent> *)# BEGIN generated (?P<name>[a-z-]+):.*\n"
                    r"(?P<body>(?:.*\n)*?)"
                    r"(?P=indent)# END generated (?P=name)\n", re.MULTILINE)


def load_metrics_base(count):
    """The load generator's metrics ports start on the first round ten at or above the last
    server's metrics port, so the two ranges never overlap."""
    return METRICS_PORT_BASE + 10 * max(1, -(-count // 10))


def compose_services(models):
    """Each model's server, then the load generator that cycles through them (load-cycle.sh
    reads the models from the binary itself; it is told where Prometheus expects its metrics)."""
    lines = []
    for number, model in enumerate(models, start=1):
        name = model["name"]
        lines += [f"{name}:", "  <<: *switchyard"]
        if number == 1:
            lines.append("  build: *build  # the one service that builds the image")
        bind = "${SWITCHYARD_BIND:-127.0.0.1}"
        lines.append(f'  command: [serve, --model, {name}, --bind, "{bind}", '
                     f'--port, "{SERVICE_PORT_BASE + number}", '
                     f'--metrics-port, "{METRICS_PORT_BASE + number}", --quiet]')
    lines += [
        "",
        "load:",
        "  <<: *switchyard",
        "  entrypoint: [/usr/local/bin/switchyard-load-cycle]",
        "  command: []",
        "  environment:",
        "    SWITCHYARD_HOST: ${SWITCHYARD_LOAD_HOST:-127.0.0.1}",
        "    SCENARIO_SECONDS: ${SCENARIO_SECONDS:-30}",
        f'    LOAD_METRICS_BASE: "{load_metrics_base(len(models))}"',
        f"  depends_on: [{', '.join(model['name'] for model in models)}]",
    ]
    return lines


def server_targets(models):
    return [f'- {{targets: ["127.0.0.1:{METRICS_PORT_BASE + number}"], '
            f'labels: {{model: {model["name"]}}}}}'
            for number, model in enumerate(models, start=1)]


def load_targets(models):
    base = load_metrics_base(len(models))
    return [f'- {{targets: ["127.0.0.1:{base + number}"], labels: {{model: {model["name"]}}}}}'
            for number, model in enumerate(models, start=1)]


def cycle_scenarios(models):
    """load-cycle.sh's runs, "label|flags" a line (the models do not change them)."""
    return (["scenarios=("] + [f'  "{label}|{" ".join(flags)}"' for label, flags in cycle_runs()]
            + [")"])


def kubernetes_servers(models):
    """A Deployment and a Service a model. Names are DNS labels: a model's '_' becomes '-'."""
    lines = []
    for model in models:
        name, protocol = model["name"], model["protocol"]
        labels = f"{{app.kubernetes.io/name: switchyard, switchyard/model: {name}}}"
        service, metrics = KUBERNETES_SERVICE_PORT, KUBERNETES_METRICS_PORT
        lines += KUBERNETES_SERVER.format(
            dns=f"switchyard-{name.replace('_', '-')}", name=name, labels=labels,
            protocol=protocol, service=service, metrics=metrics).splitlines()
    return lines


KUBERNETES_SERVER = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {dns}
  labels: {labels}
spec:
  replicas: 1
  selector:
    matchLabels: {labels}
  template:
    metadata:
      labels: {labels}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "{metrics}", \
prometheus.io/path: /metrics}}
    spec:
      containers:
      - name: server
        image: ${{IMAGE}}
        args: [serve, --model, {name}, --bind, 0.0.0.0, --port, "{service}", \
--metrics-port, "{metrics}", --quiet]
        ports:
        - {{name: {protocol}, containerPort: {service}}}
        - {{name: metrics, containerPort: {metrics}}}
        readinessProbe:
          tcpSocket: {{port: {service}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {dns}
  labels: {labels}
spec:
  selector: {labels}
  ports:
  - {{name: {protocol}, port: {service}, targetPort: {service}}}
  - {{name: metrics, port: {metrics}, targetPort: {metrics}}}
"""


FILES = {
    DEPLOY / "docker-compose.yml": {"services": compose_services},
    DEPLOY / "load-cycle.sh": {"scenarios": cycle_scenarios},
    DEPLOY / "kubernetes" / "servers.yaml": {"servers": kubernetes_servers},
    DEPLOY / "prometheus" / "prometheus.yml": {"server-targets": server_targets,
                                               "load-targets": load_targets},
}


def render(text, regions, models, path):
    """`text` with every generated region rewritten; each region of `regions` must be there once."""
    found = []

    def body(match):
        name, indent = match.group("name"), match.group("indent")
        if name not in regions:
            sys.exit(f"{path}: no generator for the region '{name}'")
        found.append(name)
        lines = [f"{indent}{line}" if line else "" for line in regions[name](models)]
        return (match.group(0)[:match.start("body") - match.start()] + "".join(
            line + "\n" for line in lines) + f"{indent}# END generated {name}\n")

    text = MARKER.sub(body, text)
    missing = sorted(set(regions) - set(found))
    twice = sorted({name for name in found if found.count(name) > 1})
    if missing or twice:
        sys.exit(f"{path}: regions missing {missing}, twice {twice}: restore their markers")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switchyard", help="the binary whose registry to read (default: the "
                        "release build)",
                        default=str(ROOT / "build" / "release" / "cli" / "switchyard"))
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail with a diff if a file differs from the registry")
    args = parser.parse_args()
    done = subprocess.run([args.switchyard, "serve", "--list-models", "--format=json"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{args.switchyard} serve --list-models failed: {done.stderr.strip()}")
    models = json.loads(done.stdout)
    if not models:
        sys.exit("the registry lists no model")

    stale = []
    for path, regions in FILES.items():
        text = path.read_text()
        wanted = render(text, regions, models, path)
        if wanted == text:
            continue
        relative = path.relative_to(ROOT)
        if args.check:
            stale.append(relative)
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), wanted.splitlines(keepends=True),
                f"{relative} (committed)", f"{relative} (from the registry)"))
        else:
            path.write_text(wanted)
            print(f"wrote {relative}")
    if stale:
        sys.exit(f"{', '.join(map(str, stale))}: not what the model registry gives; "
                 "run deploy/generate.py and commit the result")


if __name__ == "__main__":
    main()
