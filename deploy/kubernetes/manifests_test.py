#!/usr/bin/python3
"""ctest Deploy.KubernetesManifests: what can be checked of deploy/kubernetes/ without a cluster.

  - Every manifest, rendered as docs/load-kubernetes.md renders it (envsubst), passes the JSON
    schema of its kind: Kubernetes 1.27's own, made strict (schemas/vendor.py says whence), so a
    misspelt field fails; a manifest with one is shown to fail.
  - servers.yaml has a Deployment and a Service for every model of the registry, listening on all
    interfaces with the Prometheus annotations; load-job.yaml is an Indexed Job of N workers.
  - The Job's container command, for each completion index 0..N-1, runs here as the pods would run
    it (the Service's host replaced by a real `switchyard serve` on 127.0.0.1, a small load), its
    results are collected from the output as the doc collects them from `kubectl logs`, and
    `switchyard load merge` makes them one run whose requests are the sum of the workers'.

Not checked here: anything only a cluster does (scheduling, the anti-affinity, DNS, pulling the
image, the annotations being scraped). docs/load-kubernetes.md says so.

Usage: manifests_test.py --switchyard BIN
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "clients"))
from targets import free_port, start_switchyard  # noqa: E402

SCHEMAS = json.loads((HERE / "schemas" / "kubernetes-strict.json").read_text())
IMAGE = "registry.example.com/switchyard:test"
WORKERS = 3
# The test's own load: a few seconds at a small rate, where the Job asks for far more.
SMALL_LOAD = "--connections 6 --rate 300 --duration 2s --warmup 500ms"
BINARY = None


def render(name, **values):
    """The manifest as kubectl receives it: envsubst, told which variables to fill, as the doc
    runs it (so the script's own $VARIABLES stay)."""
    done = subprocess.run(["envsubst", " ".join(f"${key}" for key in values)],
                          input=(HERE / name).read_text(), env={**os.environ, **values},
                          capture_output=True, text=True, timeout=30, check=True)
    return [document for document in yaml.safe_load_all(done.stdout) if document is not None]


def start_in(seconds):
    """An RFC 3339 UTC instant at least `seconds` from now, to the second as the doc writes it."""
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds + 1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rendered_job(start_at):
    return render("load-job.yaml", IMAGE=IMAGE, WORKERS=str(WORKERS), START_AT=start_at)[0]


def schema_errors(document):
    """Each way `document` breaks the schema of its kind, as 'path: message'."""
    for kind in SCHEMAS["kinds"]:
        properties = SCHEMAS["definitions"][kind]["properties"]
        if (document.get("apiVersion") in properties["apiVersion"]["enum"]
                and document.get("kind") in properties["kind"]["enum"]):
            break
    else:
        return [f"no schema for {document.get('apiVersion')} {document.get('kind')}"]
    validator = jsonschema.Draft7Validator({"definitions": SCHEMAS["definitions"],
                                            "$ref": f"#/definitions/{kind}"})
    return [f"{'.'.join(map(str, leaf.absolute_path))}: {leaf.message}"
            for error in validator.iter_errors(document) for leaf in leaves(error)]


def leaves(error):
    """An optional field's schema is a oneOf (the field's type, or null), so an error in it is
    "not valid under any of the given schemas": go down to the errors of the branch that got
    furthest into the document (the field's type rather than null), which name the field."""
    if not error.context:
        return [error]
    branches = {}
    for branch_error in error.context:
        branches.setdefault(branch_error.relative_schema_path[0], []).append(branch_error)
    best = max(branches.values(), key=lambda errors: (
        max(len(branch_error.absolute_path) for branch_error in errors),
        errors[0].validator_value != "null"))
    return [leaf for branch_error in best for leaf in leaves(branch_error)]


def registry():
    done = subprocess.run([BINARY, "serve", "--list-models", "--format=json"],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def container(document):
    return document["spec"]["template"]["spec"]["containers"][0]


def worker(job, index, target_port, folder):
    """The command and environment of the pod of completion index `index`, as a process here.
    What differs from a pod: the Service's host and port, a small load, a metrics port of its own
    (pods each have their own network), loopback only, and PATH finding the build's binary."""
    environment = {item["name"]: item["value"] for item in container(job)["env"]}
    path = folder / "bin"
    if not path.exists():
        path.mkdir()
        (path / "switchyard").symlink_to(Path(BINARY).resolve())
    environment.update({"TARGET_HOST": "127.0.0.1", "TARGET_PORT": str(target_port),
                        "LOAD_FLAGS": SMALL_LOAD, "METRICS_PORT": str(free_port()),
                        "METRICS_BIND": "127.0.0.1", "JOB_COMPLETION_INDEX": str(index),
                        "PATH": f"{path}:{os.environ['PATH']}"})
    return container(job)["command"], environment


class Schemas(unittest.TestCase):
    def test_every_manifest_matches_its_schema(self):
        documents = render("servers.yaml", IMAGE=IMAGE) + [rendered_job(start_in(60))]
        for document in documents:
            with self.subTest(kind=document["kind"], name=document["metadata"]["name"]):
                self.assertEqual(schema_errors(document), [])

    def test_a_misspelt_or_mistyped_field_fails(self):
        deployment = render("servers.yaml", IMAGE=IMAGE)[0]
        container(deployment)["ports"][0]["containerPrt"] = container(deployment)["ports"][0].pop(
            "containerPort")
        self.assertIn("spec.template.spec.containers.0.ports.0: Additional properties are not "
                      "allowed ('containerPrt' was unexpected)", schema_errors(deployment))
        job = rendered_job(start_in(60))
        job["spec"]["completionMod"] = job["spec"].pop("completionMode")
        job["spec"]["backoffLimit"] = "0"
        errors = schema_errors(job)
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("'completionMod' was unexpected", errors[0] + errors[1])
        self.assertIn("spec.backoffLimit: '0' is not of type 'integer'", errors)

    def test_a_kind_without_a_schema_is_an_error(self):
        self.assertEqual(schema_errors({"apiVersion": "v1", "kind": "Secret"}),
                         ["no schema for v1 Secret"])


class Servers(unittest.TestCase):
    def test_a_deployment_and_a_service_for_every_model(self):
        documents = render("servers.yaml", IMAGE=IMAGE)
        by_kind = {(document["kind"], document["metadata"]["name"]): document
                   for document in documents}
        self.assertEqual(len(by_kind), len(documents), "two documents of one kind and name")
        for model in registry():
            name = f"switchyard-{model['name'].replace('_', '-')}"
            with self.subTest(model=model["name"]):
                deployment = by_kind[("Deployment", name)]
                service = by_kind[("Service", name)]
                pod = deployment["spec"]["template"]
                args = container(deployment)["args"]
                self.assertEqual(args[:3], ["serve", "--model", model["name"]])
                self.assertEqual(args[args.index("--bind") + 1], "0.0.0.0")
                metrics_port = args[args.index("--metrics-port") + 1]
                self.assertEqual(pod["metadata"]["annotations"],
                                 {"prometheus.io/scrape": "true",
                                  "prometheus.io/port": metrics_port,
                                  "prometheus.io/path": "/metrics"})
                self.assertEqual(service["spec"]["selector"], pod["metadata"]["labels"])
                self.assertEqual(deployment["spec"]["selector"]["matchLabels"],
                                 pod["metadata"]["labels"])
                self.assertEqual([port["name"] for port in service["spec"]["ports"]],
                                 [model["protocol"], "metrics"])


class LoadJob(unittest.TestCase):
    def test_an_indexed_job_of_n_workers_on_different_nodes(self):
        job = rendered_job(start_in(60))
        spec, pod = job["spec"], job["spec"]["template"]
        self.assertEqual((spec["completionMode"], spec["completions"], spec["parallelism"],
                          spec["backoffLimit"]), ("Indexed", WORKERS, WORKERS, 0))
        self.assertEqual(pod["spec"]["restartPolicy"], "Never")
        [term] = pod["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")
        labels = dict(pod["metadata"]["labels"])
        # The model its metrics are labelled with is the one its target serves.
        target = {item["name"]: item["value"] for item in container(job)["env"]}["TARGET_HOST"]
        model = labels.pop("switchyard/load-model")
        self.assertEqual(target, "switchyard-" + model.replace("_", "-"))
        self.assertEqual(term["labelSelector"]["matchLabels"], labels)
        self.assertEqual(pod["metadata"]["annotations"]["prometheus.io/port"],
                         str(container(job)["ports"][0]["containerPort"]))

    def test_the_workers_run_and_their_results_merge(self):
        """Each completion index's command as a process here, against the model the Job targets."""
        host = {item["name"]: item["value"]
                for item in container(rendered_job(start_in(60)))["env"]}["TARGET_HOST"]
        [target] = [document for document in render("servers.yaml", IMAGE=IMAGE)
                    if document["kind"] == "Deployment" and document["metadata"]["name"] == host]
        server = start_switchyard(BINARY, container(target)["args"][2])
        self.addCleanup(server.stop)
        folder = Path(tempfile.mkdtemp(prefix="k8s-workers-"))
        self.addCleanup(shutil.rmtree, folder)
        # Rendered again now that the server is up, so that every worker starts before START_AT.
        job = rendered_job(start_in(5))
        processes = []
        for index in range(WORKERS):
            log = open(folder / f"pod-{index}.log", "w")
            self.addCleanup(log.close)
            command, environment = worker(job, index, server.port, folder)
            # stdout and stderr in one file, as `kubectl logs` shows a container's output.
            processes.append(subprocess.Popen(command, env=environment, stdout=log,
                                              stderr=subprocess.STDOUT))
        for index, process in enumerate(processes):
            try:
                process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            log_text = (folder / f"pod-{index}.log").read_text()
            self.assertEqual(process.returncode, 0, f"worker {index}: {log_text[-800:]}")

        # The collection of docs/load-kubernetes.md, with the pod's log read from its file.
        parts = []
        for index in range(WORKERS):
            result = folder / f"worker-{index}.json"
            with open(result, "w") as out:
                subprocess.run(["sed", "-n", "s/^SWITCHYARD-RESULT //p",
                                str(folder / f"pod-{index}.log")],
                               stdout=out, timeout=30, check=True)
            parts.append(json.loads(result.read_text()))
        merged_file = folder / "merged.json"
        done = subprocess.run([BINARY, "load", "merge", "--json", str(merged_file)]
                              + [str(folder / f"worker-{index}.json") for index in range(WORKERS)],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        merged = json.loads(merged_file.read_text())
        requests = [int(part.get("requests", 0)) for part in parts]
        self.assertTrue(all(requests), f"a worker answered no request: {requests}")
        self.assertEqual(int(merged["requests"]), sum(requests))
        self.assertEqual(merged["processes"], WORKERS)

    def test_a_worker_past_start_at_fails_and_prints_no_result(self):
        """`set -e` in the script: the pod fails with the load, and the collection finds nothing."""
        job = rendered_job(start_in(-60))
        folder = Path(tempfile.mkdtemp(prefix="k8s-late-"))
        self.addCleanup(shutil.rmtree, folder)
        command, environment = worker(job, 0, free_port(), folder)
        done = subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=60)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("--start-at", done.stdout + done.stderr)
        self.assertNotIn("SWITCHYARD-RESULT", done.stdout + done.stderr)


def main():
    global BINARY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switchyard", required=True, help="the switchyard binary")
    args, rest = parser.parse_known_args()
    BINARY = args.switchyard
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
