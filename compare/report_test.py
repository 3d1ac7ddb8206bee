"""The report over a saved run, in seconds and without servers: compare/testdata/results.json is
the results.json of a real `switchyard compare --quick` (every model, redis-server's reference row,
every scenario), its load generator histograms left out (the report reads none of them).

    /usr/bin/python3 -m unittest -v compare.report_test      (from the repository root; ctest
                                                             Compare.ReportFromSavedRun)
"""

import copy
import json
import re
import tempfile
import unittest
from pathlib import Path

from . import figures, report
from .scenarios import BY_NAME, PLANS, SCENARIOS, Block, Cpu, Getset, Wait, numbered_title

SAVED_RUN = Path(__file__).resolve().parent / "testdata" / "results.json"


def saved_run():
    return json.loads(SAVED_RUN.read_text())


class ReportOfTheSavedRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.results = saved_run()
        cls.folder = tempfile.TemporaryDirectory()
        report.write(copy.deepcopy(cls.results), cls.folder.name)
        cls.md = (Path(cls.folder.name) / "report.md").read_text()
        cls.html = (Path(cls.folder.name) / "report.html").read_text()
        cls.headings = re.findall(r"^## (.*)$", cls.md, re.MULTILINE)

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def section(self, heading):
        """The lines of one section of report.md, its heading left out."""
        return self.md.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()

    def test_every_section_in_order(self):
        self.assertEqual(self.headings, ["What the numbers show", "Machine", "Switch cost"] +
                         [numbered_title(s) for s in SCENARIOS] + ["Not measured", "Charts"])

    def test_every_scenario_table_has_a_row_for_each_model_and_point_measured(self):
        for scenario in SCENARIOS:
            rows = [line for line in self.section(numbered_title(scenario))
                    if line.startswith("| ") and not line.startswith("| model")]
            expected = sum(len(data) if isinstance(data, list) else 1
                           for _, data in figures.measured(self.results, scenario.name))
            self.assertGreater(expected, 0, f"the saved run has no {scenario.name}")
            self.assertEqual(len(rows), expected, scenario.name)
            for model, _ in figures.measured(self.results, scenario.name):
                self.assertTrue(any(row.startswith(f"| {model} |") for row in rows),
                                f"{model} missing from {scenario.name}")

    def test_the_reading_has_each_scenarios_sentences_in_order(self):
        reading = [line[2:] for line in self.section("What the numbers show")]
        expected = [line for s in SCENARIOS for line in s.summary(self.results)]
        self.assertEqual(reading, expected)
        for scenario in SCENARIOS:
            self.assertTrue(scenario.summary(self.results), f"{scenario.name} says nothing")

    def test_redis_server_is_the_reference_where_it_ran(self):
        self.assertIn("redis-server at 512 connections (the reference)", self.md)
        self.assertIn("redis-server, the reference measured in the same run", self.md)
        for scenario in SCENARIOS:
            if not scenario.redis:
                self.assertIn(f"- redis ({scenario.name}): redis-server has no simulated-work",
                              self.md)

    def test_machine_section(self):
        machine = "\n".join(self.section("Machine"))
        for line in ("- CPU: ", "- kernel: ", "- pinning: server on CPU 0", "- steal (",
                     "- delayed-ACK stalls", "- run: --quick"):
            self.assertIn(line, machine)
        rows = [line for line in self.section("Switch cost") if line.startswith("| ")]
        self.assertEqual(len(rows), 1 + len(self.results["switchcost"]["results"]))  # + header

    def test_the_peers_conditions_are_stated_when_the_run_has_them(self):
        # The saved run predates the peers: no line. A run with their runtimes says each setting.
        self.assertNotIn("the peers' runtimes", self.md)
        results = copy.deepcopy(self.results)
        # The runtimes' versions (not the model list).
        results["machine"]["runtimes"] = {
            "go": "go version go1.19.8 linux/amd64", "gogc": "100 (Go's default)",
            "python": "Python 3.11.2", "python_gc_thresholds": "(700, 10, 10)",
            "uvloop": "0.17.0", "gevent": "22.10.2"}
        with tempfile.TemporaryDirectory() as folder:
            report.write(results, folder)
            machine = (Path(folder) / "report.md").read_text().split("\n## Machine\n", 1)[1]
        for said in ("go1.19.8", "GOMAXPROCS = --threads (1 on the server's one CPU", "GOGC=100",
                     "Python 3.11.2", "gc thresholds (700, 10, 10)", "uvloop 0.17.0",
                     "gevent 22.10.2", "a store of its own"):
            self.assertIn(said, machine)

    def test_the_seed_question_section_sets_the_peers_beside_fiber_and_coroutine(self):
        # The saved run predates the peers: no section. A run where the peers ran gets one, first
        # after the summary, each figure this run's own. The peers' data here are the saved run's
        # C++ rows under their names: this checks the report's rendering, not a measurement.
        self.assertNotIn(report.SEED_TITLE, self.md)
        results = copy.deepcopy(self.results)
        coroutine = next(m for m in results["models"] if m["model"] == "coroutine")
        for peer in ("go", "asyncio"):  # two of the peers (not the model list)
            results["models"].append(dict(copy.deepcopy(coroutine), model=peer))
        results["switchcost"]["results"].append(
            {"unit": "goroutine", "operation": "switch", "method": "chan-pingpong",
             "pinned": True, "value": 118.0, "unit_of_value": "ns", "spread": 1.0, "runs": 3,
             "note": ""})
        with tempfile.TemporaryDirectory() as folder:
            report.write(results, folder)
            md = (Path(folder) / "report.md").read_text()
        headings = re.findall(r"^## (.*)$", md, re.MULTILINE)
        self.assertEqual(headings[1], report.SEED_TITLE)
        section = md.split(f"\n## {report.SEED_TITLE}\n", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in section.splitlines()
                if line.startswith("| ") and not line.startswith("| model")]
        # The question's order, those that ran (not the model list).
        self.assertEqual([row.split(" | ")[0] for row in rows], ["| asyncio", "| go", "| fiber",
                                                                  "| coroutine"])
        go = next(row for row in rows if row.startswith("| go |"))
        self.assertIn("| go | 118.0 ns |", go)  # its unit's own switch figure
        echo = coroutine["scenarios"]["echo"][-1]
        self.assertIn(f"at {echo['connections']}", go)

    def test_every_chart_written_and_inlined(self):
        charts = re.findall(r"^!\[[^]]+\]\(([^)]+)\)$", self.md, re.MULTILINE)
        self.assertEqual(len(charts), 6)
        for name in charts:
            self.assertGreater((Path(self.folder.name) / name).stat().st_size, 1000, name)
        self.assertEqual(self.html.count("data:image/png;base64,"), len(charts))
        self.assertEqual(self.html.count("<h2>"), len(self.headings))


class SentencesCarryTheirParameters(unittest.TestCase):
    """Each sentence and title names the scenario's own parameters, so changing one changes them."""

    results = saved_run()

    def summary(self, scenario):
        return " ".join(scenario.summary(self.results))

    def test_wait(self):
        self.assertEqual(numbered_title(BY_NAME["wait"]), "3. A 10 ms downstream wait per request")
        self.assertIn("200-connection load each waiting 10 ms downstream", self.summary(Wait()))
        longer = Wait()
        longer.micros = 25_000
        self.assertEqual(longer.title, "A 25 ms downstream wait per request")
        self.assertIn("each waiting 25 ms downstream", self.summary(longer))
        self.assertIn("sy.wait:25000", longer.loads(PLANS["quick"])[0][1])

    def test_block(self):
        self.assertIn("One blocking request of 100 ms twice a second", self.summary(Block()))
        other = Block()
        other.micros, other.per_second = 50_000, 5
        self.assertIn("One blocking request of 50 ms 5 times a second", self.summary(other))
        self.assertEqual(other.blocker_flags()[:6], ["--connections", "1", "--rate", "5",
                                                     "--mix", "sy.block:50000"])

    def test_cpu(self):
        self.assertIn("CPU-bound requests (1 ms of CPU each) used", self.summary(Cpu()))
        self.assertIn("(the machine has 2)", self.summary(Cpu()))
        lighter = Cpu()
        lighter.micros = 250
        self.assertIn("(250 µs of CPU each)", self.summary(lighter))

    def test_getset_says_its_objective(self):
        self.assertIn("held p99 ≤ 10ms up to", self.summary(Getset()))

    def test_echo_and_idle_say_their_sizes(self):
        self.assertIn("Echo at 512 connections:", self.summary(BY_NAME["echo"]))
        self.assertIn("Holding 1,000 idle connections cost", self.summary(BY_NAME["idle"]))


if __name__ == "__main__":
    unittest.main()
