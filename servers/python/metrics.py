"""The Python peers' counters: written straight into the metrics slot that `switchyard serve`
shares with the peer (docs/peers.md, "The metrics slot"), which exports them under the same
names as every model's. Nothing here serves HTTP or formats Prometheus text.

The slot is a memfd mapped with mmap; two memoryviews cast to 64-bit words ("Q" unsigned, "q"
signed for `active` and `tasks`) are indexed at the layout's offsets, so a count is one indexed
add. One thread writes in asyncio, uvloop and gevent, so they take no lock; pythreads uses
ThreadSafeMetrics, whose lock makes each read-add-write whole (the GIL alone switches threads
between the read and the write). Alone (no --metrics-fd) the same code counts into a private
buffer laid out by default_layout(), so both ways cost the same.
"""
import bisect
import gc
import json
import mmap
import threading
import time

import command_table

# The C++ models' buckets (servers/common/metrics.cc): 1-2-5 steps from 1 us to 10 s.
DURATION_BOUNDS = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3,
                   1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1, 2, 5, 10]
ERROR_KINDS = ["protocol", "unknown_command", "wrong_arguments", "limit", "oom", "store_damaged"]


def default_layout(max_commands=48):
    """A layout as docs/peers.md describes it, for running alone and for the tests."""
    buckets = len(DURATION_BOUNDS) + 1
    fields = {}
    offset = 0
    for name, words in (("requests", max_commands), ("duration_buckets", max_commands * buckets),
                        ("duration_nanos", max_commands), ("errors", len(ERROR_KINDS)),
                        ("accepted", 1), ("rejected", 1), ("failed", 1), ("active", 1),
                        ("tasks", 1), ("user_switches", 1), ("gc_cycles", 1),
                        ("gc_pause_nanos", 1)):
        fields[name] = offset
        offset += 8 * words
    return {"version": 1, "slot_offset": 0, "max_commands": max_commands,
            "commands": command_table.LABELS, "duration_bounds_seconds": DURATION_BOUNDS,
            "error_kinds": ERROR_KINDS, "fields": fields, "size": offset}


class Metrics:
    """Counts into one slot. `layout` is the parsed --metrics-layout; `buffer` the mapping."""

    def __init__(self, layout, buffer, request_metrics=True):
        if layout.get("version") != 1:
            raise ValueError("metrics layout version %r is not 1" % layout.get("version"))
        base = layout["slot_offset"]
        fields = layout["fields"]
        for name, offset in fields.items():
            if (base + offset) % 8:
                raise ValueError("metrics field %s is not 8-byte aligned" % name)
        self._buffer = buffer  # kept alive: the views below point into it
        whole = memoryview(buffer)[:len(buffer) // 8 * 8]
        self._u = whole.cast("Q")
        self._s = whole.cast("q")

        def word(name):
            return (base + fields[name]) // 8

        self._requests = word("requests")
        self._buckets = word("duration_buckets")
        self._nanos = word("duration_nanos")
        self._errors = word("errors")
        self._accepted = word("accepted")
        self._rejected = word("rejected")
        self._failed = word("failed")
        self._active = word("active")
        self._tasks = word("tasks")
        self._switches = word("user_switches")
        self._gc_cycles = word("gc_cycles")
        self._gc_pause = word("gc_pause_nanos")
        self.request_metrics = request_metrics
        self._bounds = list(layout["duration_bounds_seconds"])
        self._bucket_count = len(self._bounds) + 1
        # Our command index (command_table order) -> the layout's; unlisted ones count as the
        # layout's last entry, "unknown".
        position = {name: i for i, name in enumerate(layout["commands"])}
        unknown = len(layout["commands"]) - 1
        self._command_slot = [position.get(name, unknown) for name in command_table.LABELS]
        kinds = {kind: i for i, kind in enumerate(layout["error_kinds"])}
        # The error kinds as indices, for metrics.error(metrics.OOM) and so on.
        for kind in ERROR_KINDS:
            setattr(self, kind.upper(), kinds.get(kind, kinds.get("protocol", 0)))
        self._gc_started = 0

    @classmethod
    def from_fd(cls, fd, layout_json, request_metrics=True):
        """Maps the whole memfd `fd` shared (MAP_SHARED) and counts into the slot of
        `layout_json`."""
        mapping = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        return cls(json.loads(layout_json), mapping, request_metrics)

    @classmethod
    def private(cls, request_metrics=True):
        """Counters nobody reads: running alone, without `switchyard serve`."""
        layout = default_layout()
        return cls(layout, bytearray(layout["size"]), request_metrics)

    def value(self, field, index=0):
        """A counter's current value (for tests and logs)."""
        view = self._s if field in ("active", "tasks") else self._u
        return view[getattr(self, "_" + {"duration_buckets": "buckets", "duration_nanos": "nanos",
                                         "user_switches": "switches",
                                         "gc_pause_nanos": "gc_pause"}.get(field, field))
                    + index]

    # --- what the connections count ----------------------------------------------------------

    def request(self, command, nanos):
        """One request of command index `command` (command_table order), served in `nanos`."""
        u = self._u
        slot = self._command_slot[command]
        u[self._requests + slot] += 1
        bucket = bisect.bisect_left(self._bounds, nanos / 1e9)
        u[self._buckets + slot * self._bucket_count + bucket] += 1
        u[self._nanos + slot] += nanos

    def error(self, kind):
        self._u[self._errors + kind] += 1

    def accepted(self):
        self._u[self._accepted] += 1
        self._s[self._active] += 1

    def rejected(self):
        self._u[self._rejected] += 1

    def closed(self):
        self._s[self._active] -= 1

    def failed(self):
        self._u[self._failed] += 1

    def task_started(self):
        self._s[self._tasks] += 1

    def task_ended(self):
        self._s[self._tasks] -= 1

    def user_switch(self):
        self._u[self._switches] += 1

    def add_user_switches(self, count):
        self._u[self._switches] += count

    # --- the garbage collector ---------------------------------------------------------------

    def watch_gc(self):
        """Counts CPython's cyclic collections and the time each stopped the program, from
        gc.callbacks (called at the start and the stop of every collection, any generation).
        No lock even in pythreads: collections never overlap, and only these callbacks write
        these two words, so there is one writer at a time. Reference counting frees most
        objects without a collection; that cost is part of every request, not counted here."""
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase, info):
        if phase == "start":
            self._gc_started = time.perf_counter_ns()
        else:
            self._u[self._gc_cycles] += 1
            self._u[self._gc_pause] += time.perf_counter_ns() - self._gc_started


class ThreadSafeMetrics(Metrics):
    """Metrics for pythreads: every write under one lock, as Go's peer uses sync/atomic."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def _locked(method):  # noqa: N805 - a decorator used in the class body only
        def locked(self, *args):
            with self._lock:
                return method(self, *args)
        locked.__doc__ = method.__doc__
        return locked

    request = _locked(Metrics.request)
    error = _locked(Metrics.error)
    accepted = _locked(Metrics.accepted)
    rejected = _locked(Metrics.rejected)
    closed = _locked(Metrics.closed)
    failed = _locked(Metrics.failed)
    task_started = _locked(Metrics.task_started)
    task_ended = _locked(Metrics.task_ended)
    user_switch = _locked(Metrics.user_switch)
    add_user_switches = _locked(Metrics.add_user_switches)
    del _locked


class CountedCoroutine:
    """Awaits `coroutine` and counts each time it suspends: every value it yields goes up to the
    asyncio Task, which parks it until that future is done, so each yield is exactly one task
    suspension (a read with nothing buffered, a drain of a full buffer, a sleep) and an await that
    completes at once (data already buffered) counts nothing. Works the same on uvloop, whose
    Tasks are asyncio's. The cost, one Python generator step per suspension, measured at a
    quarter of a microsecond at most (within the noise of an asyncio.sleep(0) loop), is small next
    to the read or sleep that caused it."""

    __slots__ = ("_coroutine", "_count")

    def __init__(self, coroutine, metrics):
        self._coroutine = coroutine
        self._count = metrics.user_switch

    def __await__(self):
        coroutine = self._coroutine
        count = self._count
        value = error = None
        while True:
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
            count()
            try:
                value = yield yielded
                error = None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:  # cancellation: passed on to the coroutine
                value, error = None, thrown
