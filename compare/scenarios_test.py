"""The declarations against what reads them, without servers: the compose stack's load cycle
(deploy/load-cycle.sh) runs exactly the declared cycle, the plans size every scenario, and the one
wrapper builds the command line compare has always run.

    /usr/bin/python3 -m unittest -v compare.scenarios_test   (from the repository root; ctest
                                                             Compare.ScenariosDeclaredOnce)
"""

import dataclasses
import subprocess
import tempfile
import unittest
from pathlib import Path

from . import loadgen
from .scenarios import BY_NAME, PLANS, SCENARIOS, cycle_runs

LOAD_CYCLE = Path(__file__).resolve().parent.parent / "deploy" / "load-cycle.sh"


def flag(flags, name):
    """The value after `name` in a list of flags."""
    return flags[flags.index(name) + 1]


class LoadCycleRunsTheDeclarations(unittest.TestCase):
    def test_the_scripts_list_as_bash_reads_it(self):
        # The generated region evaluated by bash itself: quoting and all, what the cycle runs.
        region = subprocess.run(
            ["bash", "-c", 'eval "$(sed -n "/# BEGIN generated scenarios/,/# END generated '
             'scenarios/p" "$1")"; printf "%s\\n" "${scenarios[@]}"', "bash", str(LOAD_CYCLE)],
            capture_output=True, text=True, check=True).stdout.splitlines()
        self.assertEqual(region, [f"{label}|{' '.join(flags)}" for label, flags in cycle_runs()])

    def test_every_scenario_has_a_turn_in_the_cycle(self):
        for scenario in SCENARIOS:
            self.assertTrue(scenario.cycle(), scenario.name)
            for label, flags in scenario.cycle():
                self.assertNotIn("|", label + " ".join(flags))  # the script's separator
                self.assertIn("--rate", flags)  # open loop: the same offered load on every model
                self.assertNotIn("--duration", flags)  # SCENARIO_SECONDS, the script's

    def test_the_smoke_test_finds_the_first_run_by_its_label(self):
        # deploy/smoke.sh counts the cycles by the first run's line in the load service's log.
        self.assertIn(f"load-cycle: ${{models[0]}}: {cycle_runs()[0][0]}\"",
                      (LOAD_CYCLE.parent / "smoke.sh").read_text())


class Plans(unittest.TestCase):
    def test_every_scenario_sized_in_every_plan(self):
        for plan in PLANS.values():
            for scenario in SCENARIOS:
                self.assertGreaterEqual(scenario.steps(plan), 1, (plan.name, scenario.name))
                for name, flags in scenario.loads(plan):
                    self.assertTrue(all(isinstance(f, str) for f in flags), (name, flags))
                    if name != "blocker":  # it runs until the measured run beside it ends
                        self.assertEqual(flag(flags, "--duration"), plan.duration, name)
                        self.assertEqual(flag(flags, "--warmup"), plan.warmup, name)

    def test_the_quick_plan_is_the_smaller(self):
        quick, full = PLANS["quick"], PLANS["full"]
        for scenario in SCENARIOS:
            self.assertLessEqual(scenario.steps(quick), scenario.steps(full), scenario.name)
        self.assertEqual(BY_NAME["echo"].steps(quick), 2)
        self.assertEqual(flag(BY_NAME["getset"].loads(full)[0][1], "--sweep-runs"), "3")

    def test_the_objective_reaches_the_sweep(self):
        plan = dataclasses.replace(PLANS["quick"], slo="99.9:5ms")
        self.assertEqual(flag(BY_NAME["getset"].loads(plan)[0][1], "--slo"), "99.9:5ms")


class TheWrapper(unittest.TestCase):
    def test_the_command_line(self):
        self.assertEqual(
            loadgen.command("sy", 7000, ["--connections", 8], protocol="grpc",
                            json_path=Path("r.json"), cpus="1"),
            ["taskset", "-c", "1", "sy", "load", "--protocol", "grpc", "--host", "127.0.0.1",
             "--port", "7000", "--threads", "1", "--quiet", "--json", "r.json", "--connections",
             "8"])
        self.assertEqual(loadgen.command("sy", 1, [])[:3], ["sy", "load", "--protocol"])

    def test_counts_read_as_numbers(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "r.json"
            path.write_text('{"requests": "12", "throughput": 3.5}')  # protobuf JSON's int64
            self.assertEqual(loadgen.read_result(path),
                             {"requests": 12, "errors": 0, "failed": 0, "throughput": 3.5})


if __name__ == "__main__":
    unittest.main()
