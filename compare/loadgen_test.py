"""Every command line compare and the load cycle build is one the real load generator accepts and
runs: each scenario's loads (the quick plan, cut to a tenth of a second) and each run of the load
cycle, against a real server on 127.0.0.1 of each protocol, and the gRPC check and the held gRPC
channels, the wrapper's other users. A few seconds a protocol.

    SWITCHYARD_BINARY=build/release/cli/switchyard \
        /usr/bin/python3 -m unittest -v compare.loadgen_test
    (from the repository root; ctest Compare.LoadCommandLinesRun)
"""

import dataclasses
import os
import tempfile
import unittest
from pathlib import Path

from . import loadgen
from .compare import registry
from .scenarios import PLANS, SCENARIOS
from .servers import Server, hold_idle_grpc_connections, verify, verify_grpc

BINARY = os.environ.get("SWITCHYARD_BINARY")
SHORT = "100ms"


def shortened(flags):
    """`flags` measured for SHORT without warm-up: the blocker's minute and the cycle's
    SCENARIO_SECONDS (which the script adds) included."""
    flags = list(flags)
    for name, value in (("--duration", SHORT), ("--warmup", "0")):
        if name in flags:
            flags[flags.index(name) + 1] = value
        else:
            flags += [name, value]
    return flags


@unittest.skipUnless(BINARY, "set SWITCHYARD_BINARY to the built switchyard")
class CommandLinesRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The last model of each protocol: any of them parses the same flags, and the last listed
        # (an event loop) holds a thousand connections where the first (a process each) would not.
        cls.models = {facts["protocol"]: model for model, facts in registry(BINARY).items()}
        cls.plan = dataclasses.replace(PLANS["quick"], duration=SHORT, warmup="0")
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def runs(self):
        """(what, flags) of every load a scenario or the cycle makes."""
        for scenario in SCENARIOS:
            for name, flags in scenario.loads(self.plan):
                yield f"{scenario.name} {name}", shortened(flags)
        for label, flags in [run for scenario in SCENARIOS for run in scenario.cycle()]:
            yield f"cycle {label}", shortened(flags)

    def test_every_load_runs(self):
        for protocol, model in self.models.items():
            with Server(BINARY, model, extra_flags=["--max-clients", "20000"]) as server:
                for index, (what, flags) in enumerate(self.runs()):
                    with self.subTest(protocol=protocol, run=what):
                        path = Path(self.tmp.name) / f"{protocol}-{index}.json"
                        result = loadgen.run(BINARY, server.port, flags, path, protocol=protocol,
                                             timeout=120)
                        self.assertIn("steps" if "--sweep" in flags else "latency", result)
                        self.assertEqual(result["errors"], 0, what)

    def test_the_checks_and_the_held_channels(self):
        for protocol, model in self.models.items():
            with Server(BINARY, model) as server:
                if protocol == "grpc":
                    self.assertIsNone(verify_grpc(BINARY, server))
                    with hold_idle_grpc_connections(BINARY, server.port, 20) as (opened, answered):
                        self.assertEqual((opened, answered), (20, 20))
                else:
                    self.assertIsNone(verify(server.port))

    def test_a_refused_flag_says_so(self):
        with self.assertRaisesRegex(loadgen.LoadError, "--no-such-flag"):
            loadgen.run(BINARY, 1, ["--no-such-flag"], Path(self.tmp.name) / "refused.json")


if __name__ == "__main__":
    unittest.main()
