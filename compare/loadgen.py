"""The one wrapper around `switchyard load`: every run compare makes (a scenario's load, the second
load generator of the blocking scenario, the gRPC check, the held idle gRPC channels) builds its
command line here and reads its result here."""

import json
import subprocess


class LoadError(RuntimeError):
    """`switchyard load` exited with an error or wrote no result."""


def command(binary, port, flags, *, protocol="resp", host="127.0.0.1", json_path=None, cpus=None):
    """The command line of one run: the target, one client thread (compare pins the load generator
    to the CPUs the server does not have), no progress line, the result file, then `flags`, the
    run's own (its connections, mix, rate, duration...). `cpus`: pinned there with taskset."""
    line = [binary, "load", "--protocol", protocol, "--host", host, "--port", str(port),
            "--threads", "1", "--quiet"]
    if json_path is not None:
        line += ["--json", str(json_path)]
    line += [str(flag) for flag in flags]
    return ["taskset", "-c", cpus, *line] if cpus else line


def read_result(path):
    """A result file, its counts as numbers: protobuf JSON writes 64-bit integers as strings."""
    result = json.loads(path.read_text())
    for key in ("requests", "errors", "failed"):
        result[key] = int(result.get(key, 0))
    return result


def run(binary, port, flags, json_path, *, protocol="resp", cpus=None, timeout=600):
    """Runs one load to its end and returns its result (also kept at `json_path`). Raises LoadError
    when it fails and subprocess.TimeoutExpired when it outlives `timeout` seconds."""
    done = subprocess.run(command(binary, port, flags, protocol=protocol, json_path=json_path,
                                  cpus=cpus), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not json_path.exists():
        raise LoadError(f"load failed ({' '.join(map(str, flags))}): {done.stderr.strip()[-300:]}")
    return read_result(json_path)


def start(binary, port, flags, *, protocol="resp", json_path=None, cpus=None,
          stderr=subprocess.DEVNULL):
    """Starts a load that runs beside something else (the caller ends it): a Popen, stdout
    discarded, stderr as asked (a pipe, as text, to read what it says while it runs)."""
    return subprocess.Popen(command(binary, port, flags, protocol=protocol, json_path=json_path,
                                    cpus=cpus), stdout=subprocess.DEVNULL, stderr=stderr,
                            text=True)
