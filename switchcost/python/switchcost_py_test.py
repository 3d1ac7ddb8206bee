"""Runs switchcost_py.py --quick as the C++ switchcost will and checks its JSON.

The bounds are loose on purpose (orders of magnitude, not timings): the test must pass on a busy
2-CPU machine, and the figures themselves are judged in docs/measurements, not here.
"""

import json
import os
import subprocess
import sys
import unittest

import switchcost_py

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "switchcost_py.py")
FIELDS = ["unit", "operation", "method", "pinned", "value", "unit_of_value", "spread", "runs",
          "note"]


def expected_rows():
    """(unit, operation, method, pinned, unit_of_value, low, high) of every row this machine
    should give: uvloop, greenlet and the 2-CPU switch only where they can be had."""
    loops = ["asyncio"] + (["uvloop"] if switchcost_py.uvloop is not None else [])
    rows = []
    for loop in loops:
        rows += [
            ("asyncio-task", "switch", f"future-pingpong/{loop}", True, "ns", 50, 1e6),
            ("asyncio-task", "switch", f"sleep0/{loop}", True, "ns", 50, 1e6),
            ("asyncio-task", "create", f"create_task+run/{loop}", False, "ns", 50, 1e6),
        ]
    rows += [
        ("python-thread", "switch", "lock-pingpong", True, "ns", 100, 10e6),
        ("python-thread", "create", "Thread.start+join", False, "ns", 1000, 100e6),
        ("asyncio-task", "memory", "pss@100", False, "bytes", 50, 1 << 20),
        ("asyncio-task", "memory", "pss@300", False, "bytes", 50, 1 << 20),
    ]
    if len(os.sched_getaffinity(0)) >= 2:
        rows.append(("python-thread", "switch", "lock-pingpong", False, "ns", 100, 100e6))
    if switchcost_py.greenlet is not None:
        rows += [
            ("greenlet", "switch", "greenlet.switch", True, "ns", 5, 1e6),
            ("greenlet", "create", "greenlet+switch", False, "ns", 20, 10e6),
            ("greenlet", "memory", "pss@100", False, "bytes", 50, 1 << 20),
            ("greenlet", "memory", "pss@300", False, "bytes", 50, 1 << 20),
        ]
    return rows


class QuickRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        done = subprocess.run([sys.executable, PROGRAM, "--quick", "--alive", "100",
                               "--alive", "300"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=300)
        if done.returncode != 0:
            raise AssertionError(f"exit {done.returncode}: {done.stderr}")
        cls.figures = json.loads(done.stdout)

    def test_schema(self):
        for f in self.figures:
            self.assertEqual(list(f), FIELDS)
            self.assertIn(f["unit_of_value"], ("ns", "bytes"))
            self.assertEqual(f["runs"], 3)
            self.assertGreaterEqual(f["spread"], 0)
            self.assertTrue(f["note"])

    def test_every_row_present_and_plausible(self):
        found = {(f["unit"], f["operation"], f["method"], f["pinned"]): f for f in self.figures}
        rows = expected_rows()
        for unit, operation, method, pinned, unit_of_value, low, high in rows:
            with self.subTest(unit=unit, operation=operation, method=method, pinned=pinned):
                f = found.get((unit, operation, method, pinned))
                self.assertIsNotNone(f, "row missing")
                self.assertEqual(f["unit_of_value"], unit_of_value)
                self.assertGreaterEqual(f["value"], low)
                self.assertLessEqual(f["value"], high)
        self.assertEqual(len(self.figures), len(rows))

    def test_pinned_flags_match_notes(self):
        for f in self.figures:
            with self.subTest(unit=f["unit"], method=f["method"], pinned=f["pinned"]):
                if f["operation"] != "switch":
                    self.assertFalse(f["pinned"])
                else:
                    self.assertEqual(f["pinned"], "pinned to CPU" in f["note"], f["note"])


class HarnessTest(unittest.TestCase):
    def test_summarize(self):
        self.assertEqual(switchcost_py.summarize([5, 1, 3, 9]), (4, 4, 4))
        self.assertEqual(switchcost_py.summarize([2, 7, 3]), (3, 2.5, 3))

    def test_measure_ns_scales_to_budget(self):
        calls = []

        def timed_run(n):  # a loop whose iterations take 1 µs each
            calls.append(n)
            return n * 1e-6

        stats = switchcost_py.measure_ns({"seconds": 0.01, "runs": 3}, 2, timed_run)
        self.assertAlmostEqual(stats[0], 500)
        self.assertEqual(stats[2], 3)
        self.assertEqual(calls[-1], 10000)

    def test_alive_flags(self):
        args = switchcost_py.parse_args(["--alive", "300,100", "--alive", "200"])
        self.assertEqual(args.alive, [100, 200, 300])
        self.assertEqual((args.runs, args.run_seconds), (5, 0.05))
        args = switchcost_py.parse_args(["--quick"])
        self.assertEqual((args.alive, args.runs, args.run_seconds), ([100, 1000], 3, 0.01))


if __name__ == "__main__":
    unittest.main()
