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


def describe(binary):
    """A dict describing this machine and the software measured on it."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "mitigations": _mitigations(),
        "versions": {
            "switchyard": _first_line([binary, "--version"]),
            "compiler": _first_line(["c++", "--version"]),
            "redis-server": _first_line(["redis-server", "--version"]),
            "python": platform.python_version(),
        },
    }
