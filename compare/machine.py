"""What the report says about the machine it ran on: CPU, cores, kernel, mitigations, versions."""

import os
import platform
import subprocess
from pathlib import Path


def _first_line(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
        return out.strip().splitlines()[0] if out.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def _cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mitigations():
    folder = Path("/sys/devices/system/cpu/vulnerabilities")
    if not folder.is_dir():
        return {}
    return {f.name: f.read_text().strip() for f in sorted(folder.iterdir())}


def _package_version(package):
    out = _first_line(["dpkg-query", "-W", "-f", "${Version}", package])
    return out if out not in ("unknown", "not installed") else "not installed"


def _python_gc_thresholds():
    """The collector's thresholds of Debian's interpreter, the one the Python peers run on."""
    return _first_line(["/usr/bin/python3", "-c", "import gc; print(gc.get_threshold())"])


def runtimes():
    """The peers' runtimes and the settings that decide what they cost (docs/peers.md): a fair
    comparison says them. GOGC and GOMAXPROCS come from the environment the servers inherit;
    serve sets GOMAXPROCS from --threads, which the report gives with the pinning."""
    # The runtimes' tools and packages (not the model list).
    return {
        "go": _first_line(["go", "version"]),
        "gogc": os.environ.get("GOGC", "100 (Go's default)"),
        "python": _first_line(["/usr/bin/python3", "--version"]),
        "python_gc_thresholds": _python_gc_thresholds(),
        "uvloop": _package_version("python3-uvloop"),
        "gevent": _package_version("python3-gevent"),
    }


def describe(binary):
    """A dict describing this machine and the software measured on it."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "mitigations": _mitigations(),
        "runtimes": runtimes(),
        "versions": {
            "switchyard": _first_line([binary, "--version"]),
            "compiler": _first_line(["c++", "--version"]),
            "redis-server": _first_line(["redis-server", "--version"]),
            "python": platform.python_version(),
        },
    }
