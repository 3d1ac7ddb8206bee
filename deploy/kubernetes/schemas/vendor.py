#!/usr/bin/python3
"""Writes kubernetes-strict.json: the JSON schemas of the Kubernetes kinds that
deploy/kubernetes/ uses, and of every type they reach, for manifests_test.py to validate against.

Source: the npm packages kubernetes-models 4.3.1 and @kubernetes-models/apimachinery 1.2.2 (MIT,
https://github.com/tommy351/kubernetes-models-ts), whose _schemas/*.js hold, one type a file, the
JSON schemas generated from the OpenAPI spec of Kubernetes 1.27.1. Later versions of the package
ship compiled validators instead of schemas, so this is the newest one a plain JSON-schema
validator can read; the fields these manifests use (Indexed Jobs included) are all in 1.27.

What it changes, and why:
  - `$ref: "io.k8s...Type#"` becomes `#/definitions/io.k8s...Type`, so that one file holds them all;
  - every object schema with `properties` and no `additionalProperties` gets
    `additionalProperties: false`, as the "strict" schemas of kubeconform do: a misspelt field
    is then an error instead of something the API server drops without a word.

The test has no network: the schemas stay committed. To write them again (one type a line):

    npm pack kubernetes-models@4.3.1 @kubernetes-models/apimachinery@1.2.2
    mkdir models apimachinery
    tar xzf kubernetes-models-4.3.1.tgz -C models
    tar xzf kubernetes-models-apimachinery-1.2.2.tgz -C apimachinery
    deploy/kubernetes/schemas/vendor.py models/package apimachinery/package
"""

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "kubernetes-strict.json"
KINDS = ["io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.Service", "io.k8s.api.batch.v1.Job"]
SCHEMA = re.compile(r"^const schema = (\{.*?^\});$", re.MULTILINE | re.DOTALL)


def file_name(type_name):
    """io.k8s.api.batch.v1.JobSpec -> IoK8sApiBatchV1JobSpec, the package's file for it."""
    return "".join(part[:1].upper() + part[1:] for part in type_name.split("."))


def read_schema(packages, type_name):
    for package in packages:
        path = package / "_schemas" / f"{file_name(type_name)}.js"
        if path.exists():
            return json.loads(SCHEMA.search(path.read_text()).group(1))
    sys.exit(f"no schema for {type_name} in {', '.join(map(str, packages))}")


def strict(node, refs):
    """Rewrites `node` in place (refs, additionalProperties) and collects the types it names."""
    if isinstance(node, list):
        for item in node:
            strict(item, refs)
        return
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rstrip("#")
        refs.append(name)
        node["$ref"] = f"#/definitions/{name}"
    if "properties" in node:
        node.setdefault("additionalProperties", False)
        for child in node["properties"].values():
            strict(child, refs)
    for keyword in ("items", "oneOf", "anyOf", "allOf", "additionalProperties"):
        if keyword in node:
            strict(node[keyword], refs)


def main():
    packages = [Path(argument) for argument in sys.argv[1:]]
    if len(packages) != 2:
        sys.exit(__doc__)
    definitions, wanted = {}, list(KINDS)
    while wanted:
        name = wanted.pop()
        if name in definitions:
            continue
        definitions[name] = read_schema(packages, name)
        strict(definitions[name], wanted)
    lines = [f"  {json.dumps(name)}: {json.dumps(definitions[name], sort_keys=True)}"
             for name in sorted(definitions)]
    source = ("kubernetes-models 4.3.1 and @kubernetes-models/apimachinery 1.2.2 (npm, MIT), "
              "generated from Kubernetes 1.27.1's OpenAPI spec; made strict by vendor.py")
    OUT.write_text('{\n"$comment": ' + json.dumps(source) + ',\n"kinds": ' + json.dumps(KINDS)
                   + ',\n"definitions": {\n' + ",\n".join(lines) + "\n}\n}\n")
    print(f"wrote {OUT} ({len(definitions)} types)")


if __name__ == "__main__":
    main()
