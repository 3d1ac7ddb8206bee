#!/usr/bin/env python3
"""ctest Deploy.SwarmLoad: deploy/swarm-load.sh on the single-node swarm of this machine.

Starts a server (the switchyard under test, on a free loopback port), runs the script with three
load tasks against it, and checks the merged result's shape: 3 processes of 3 workers, requests the
sum of the three parts (and of the three worker files), each worker index 0..2 exactly once, one
run id throughout.

Where there is no Docker engine, or it is not a swarm manager, it exits 77 (ctest's
SKIP_RETURN_CODE) at once with the reason: it never installs or starts Docker, nor creates a swarm
(docs/load-swarm.md shows how to make one without private addresses).

The image is SWITCHYARD_IMAGE (default switchyard:local). It is built from this checkout only when
it is missing or predates `load --worker-index`: that build compiles Switchyard inside the image
and takes many minutes on two cores, so build it beforehand (deploy/Dockerfile) and the test takes
about 20 s. The build's base is SWITCHYARD_BASE_IMAGE, else the debootstrapped base
deploy/smoke.sh makes where no registry is reachable, if present, else the Dockerfile's.

Usage: swarm_load_test.py --switchyard BIN
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "clients"))
from targets import start_switchyard  # noqa: E402

WORKERS = 3
SMOKE_BASE = "switchyard/debian:12-debootstrap"  # what deploy/smoke.sh imports without a registry


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def docker(*args, timeout=60, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


def engine_or_skip():
    if shutil.which("docker") is None:
        skip("no docker command on PATH")
    try:
        info = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
                      timeout=15, check=False)
    except subprocess.TimeoutExpired:
        skip("the Docker engine did not answer within 15 s")
    if info.returncode != 0:
        skip("no Docker engine answers (" + (info.stderr.strip().splitlines() or ["?"])[-1] + ")")
    state = info.stdout.split()
    if not state or state[0] != "active":
        skip("the Docker engine is not in swarm mode (docs/load-swarm.md: a single-node swarm)")
    if state[1:] != ["true"]:
        skip("this node is a swarm worker: services are created on a manager only")


def image_ready(image):
    if docker("image", "inspect", image, check=False).returncode != 0:
        return False
    help_text = docker("run", "--rm", "--network", "host", image, "load", "--help", check=False)
    return "--worker-index" in help_text.stdout


def build_image(image):
    print(f"building {image} from {ROOT} (slow: Switchyard compiles inside it)", flush=True)
    command = ["docker", "build", "--network", "host", "-f", "deploy/Dockerfile",
               "--build-arg", "JOBS=2", "-t", image, "."]
    base = os.environ.get("SWITCHYARD_BASE_IMAGE")
    if not base and docker("image", "inspect", SMOKE_BASE, check=False).returncode == 0:
        base = SMOKE_BASE  # no registry here, most likely: smoke.sh made a base without one
    if base:
        command[2:2] = ["--build-arg", "BASE=" + base]
    subprocess.run(command, cwd=ROOT, check=True, timeout=3000, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--switchyard", required=True, help="the binary that serves on loopback")
    args = parser.parse_args()
    engine_or_skip()
    image = os.environ.get("SWITCHYARD_IMAGE", "switchyard:local")
    if not image_ready(image):
        build_image(image)
        if not image_ready(image):
            raise SystemExit(f"{image} still has no `load --worker-index` after the build")

    server = start_switchyard(args.switchyard, "coroutine")
    port = server.port
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-load-test-") as results:
            # A unique service name: a run left over elsewhere must not collide with this one.
            command = [str(ROOT / "deploy" / "swarm-load.sh"), "--workers", str(WORKERS),
                       "--host", "127.0.0.1", "--port", str(port), "--image", image,
                       "--results", results, "--name", f"switchyard-load-test-{os.getpid()}",
                       "--start-in", "10", "--timeout", "60",
                       "--", "-c", "6", "-R", "3000", "-d", "2s", "--warmup", "500ms"]
            print("+ " + " ".join(command), flush=True)
            subprocess.run(command, check=True, timeout=240)
            check(pathlib.Path(results))
    finally:
        server.stop()
    print("ok: the merged result of 3 swarm tasks has the shape of one run")


def check(results):
    parts = [json.loads((results / f"worker-{i}.json").read_text()) for i in range(WORKERS)]
    merged = json.loads((results / "merged.json").read_text())
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: {got!r}, expected {want!r}")

    expect("merged processes", merged["processes"], WORKERS)
    expect("merged workers", merged["workers"], WORKERS)
    expect("worker indices of the files", sorted(p["worker_index"] for p in parts),
           list(range(WORKERS)))
    expect("worker indices of the merged parts",
           sorted(p["worker_index"] for p in merged["parts"]), list(range(WORKERS)))
    expect("workers of each file", {p["workers"] for p in parts}, {WORKERS})
    expect("run ids", {p["run_id"] for p in parts} | {merged["run_id"]}, {merged["run_id"]})
    # uint64 fields are strings in protobuf JSON.
    expect("merged requests vs the files'", int(merged["requests"]),
           sum(int(p["requests"]) for p in parts))
    expect("merged requests vs its parts'", int(merged["requests"]),
           sum(int(p["requests"]) for p in merged["parts"]))
    if int(merged["requests"]) == 0:
        failures.append("no request was answered")
    if failures:
        raise SystemExit("FAILED:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
