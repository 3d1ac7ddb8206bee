"""How the report writes a figure (a latency, a rate, a size, a knee) and finds one in the results:
shared by the scenarios' summary sentences (scenarios.py) and the report's tables (report.py)."""


def duration(seconds):
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def rate(value):
    return f"{value:,.0f}/s"


def kib(value):
    return f"{value / 1024:,.1f} KiB"


def micros_in_words(micros):
    """A scenario's parameter as its sentences say it: 10000 → "10 ms", 100 → "100 µs"."""
    return f"{micros // 1000} ms" if micros >= 1000 and micros % 1000 == 0 else f"{micros} µs"


def measured(results, scenario):
    """(model, data) for every model that ran `scenario`."""
    return [(m["model"], m["scenarios"][scenario]) for m in results["models"]
            if scenario in m["scenarios"]]


def reference(results, scenario):
    """redis-server's figures in `scenario`, when it ran as the reference row."""
    return dict(measured(results, scenario)).get("redis")


def reference_echo(results):
    """redis-server's echo points by connection count ({} when it did not run)."""
    return {p["connections"]: p for p in (reference(results, "echo") or [])}


def limited(result):
    return " ⚠ client-limited" if result.get("client_limited") else ""


def throughput(result):
    """The median run's throughput, its range over the repeats when there were several, and the
    client-limited flag."""
    low, high = result.get("spread", {}).get("throughput", [0, 0])
    spread = f" ({low:,.0f}–{high:,.0f})" if result.get("repeats", 1) > 1 else ""
    return rate(result["throughput"]) + spread + limited(result)


def p99(result):
    """The median run's p99, with the range of the repeats' p99s when there were several."""
    low, high = result.get("spread", {}).get("p99", [0, 0])
    spread = f" ({duration(low)}–{duration(high)})" if result.get("repeats", 1) > 1 else ""
    return duration(result["latency"]["p99"]) + spread


def knee(sweep):
    """The knee as the report states it: "≥ X/s" when the sweep found only a lower bound."""
    highest = sweep.get("highest_rate_meeting_slo", 0)
    return ("≥ " if sweep.get("knee_is_lower_bound") else "") + rate(highest)


def knee_in_words(sweep):
    """The knee in a sentence: "at least X/s" when the sweep found only a lower bound."""
    return knee(sweep).replace("≥ ", "at least ")
