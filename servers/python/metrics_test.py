"""The metrics slot as `switchyard serve` shares it: a memfd, a layout in JSON with the slot at an
offset, and the counters read back from a second mapping, as serve reads them."""
import asyncio
import gc
import json
import mmap
import os
import struct
import unittest

import command_table
from metrics import CountedCoroutine, Metrics, ThreadSafeMetrics, default_layout


class SlotTest(unittest.TestCase):
    def setUp(self):
        layout = default_layout()
        layout["slot_offset"] = 4096  # a slot after serve's own header, as in docs/peers.md
        # A shorter command list than ours: what it does not list counts as its "unknown".
        layout["commands"] = ["ping", "echo", "get", "set", "unknown"]
        self.layout = layout
        self.fd = os.memfd_create("switchyard-metrics-test")
        self.addCleanup(os.close, self.fd)
        os.ftruncate(self.fd, 4096 + layout["size"])
        reader = mmap.mmap(self.fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
        self.addCleanup(reader.close)
        self.reader = reader

    def read(self, field, index=0, signed=False):
        offset = self.layout["slot_offset"] + self.layout["fields"][field] + 8 * index
        return struct.unpack_from("q" if signed else "Q", self.reader, offset)[0]

    def test_counters_land_at_the_layout_offsets(self):
        for kind in (Metrics, ThreadSafeMetrics):
            with self.subTest(kind=kind.__name__):
                os.ftruncate(self.fd, 0)  # zeroed again
                os.ftruncate(self.fd, 4096 + self.layout["size"])
                metrics = kind.from_fd(self.fd, json.dumps(self.layout))
                get = command_table.INDEX[b"get"]
                metrics.request(get, 1500)  # 1.5 us: the 2 us bucket
                metrics.request(get, 1000)  # exactly a bound: that bound's bucket
                metrics.request(command_table.INDEX[b"incr"], 20_000_000_000)  # +Inf, unknown
                metrics.error(metrics.OOM)
                metrics.accepted()
                metrics.accepted()
                metrics.closed()
                metrics.rejected()
                metrics.failed()
                metrics.task_started()
                metrics.task_ended()
                metrics.task_ended()
                metrics.user_switch()
                self.assertEqual(self.read("requests", 2), 2)
                self.assertEqual(self.read("requests", 4), 1)
                buckets = len(self.layout["duration_bounds_seconds"]) + 1
                self.assertEqual(self.read("duration_buckets", 2 * buckets + 0), 1)
                self.assertEqual(self.read("duration_buckets", 2 * buckets + 1), 1)
                self.assertEqual(self.read("duration_buckets", 4 * buckets + buckets - 1), 1)
                self.assertEqual(self.read("duration_nanos", 2), 2500)
                self.assertEqual(self.read("errors", 4), 1)  # "oom" is the fifth kind
                self.assertEqual([self.read(f) for f in ("accepted", "rejected", "failed")],
                                 [2, 1, 1])
                self.assertEqual(self.read("active", signed=True), 1)
                self.assertEqual(self.read("tasks", signed=True), -1)
                self.assertEqual(self.read("user_switches"), 1)

    def test_gc_cycles_and_pause(self):
        metrics = Metrics.from_fd(self.fd, json.dumps(self.layout))
        metrics.watch_gc()
        self.addCleanup(gc.callbacks.remove, metrics._on_gc)
        gc.collect()
        gc.collect()
        self.assertGreaterEqual(self.read("gc_cycles"), 2)
        self.assertGreater(self.read("gc_pause_nanos"), 0)

    def test_counted_coroutine_counts_real_suspensions_only(self):
        metrics = Metrics.private()

        async def work():
            await asyncio.sleep(0)  # suspends
            future = asyncio.get_running_loop().create_future()
            future.set_result(7)
            value = await future  # done already: no suspension
            await asyncio.sleep(0.001)  # suspends
            return value

        self.assertEqual(asyncio.run(_run(work(), metrics)), 7)
        self.assertEqual(metrics.value("user_switches"), 2)

    def test_bad_layout_is_refused(self):
        with self.assertRaises(ValueError):
            Metrics.from_fd(self.fd, json.dumps(dict(self.layout, version=2)))


async def _run(coroutine, metrics):
    return await CountedCoroutine(coroutine, metrics)


if __name__ == "__main__":
    unittest.main()
