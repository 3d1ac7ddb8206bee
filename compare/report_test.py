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

from . import figures, report, study
from .scenarios import BY_NAME, PLANS, SCENARIOS, Block, Cpu, Getset, Wait, numbered_title

SAVED_RUN = Path(__file__).resolve().parent / "testdata" / "results.json"
# A real `switchyard switchcost --quick --json` with its "study" (the saved run predates it).
SAVED_SWITCHCOST = Path(__file__).resolve().parent / "testdata" / "switchcost-study.json"


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
        self.assertEqual(self.headings, ["What the numbers show", study.TITLE, "Machine",
                                         "Switch cost"] +
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
        self.assertEqual(headings[1:3], [study.TITLE, report.SEED_TITLE])
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

    def test_a_run_without_the_study_says_so_in_one_line(self):
        self.assertEqual(self.section(study.TITLE), [
            "Not answered in this run: this run's switchcost predates the study's table."])
        results = copy.deepcopy(self.results)
        del results["switchcost"]  # --no-switchcost
        with tempfile.TemporaryDirectory() as folder:
            report.write(results, folder)
            md = (Path(folder) / "report.md").read_text()
        self.assertIn(f"## {study.TITLE}\n\nNot answered in this run: the switch-cost "
                      "microbenchmarks did not run.\n", md)

    def test_every_chart_written_and_inlined(self):
        charts = re.findall(r"^!\[[^]]+\]\(([^)]+)\)$", self.md, re.MULTILINE)
        self.assertEqual(len(charts), 6)
        for name in charts:
            self.assertGreater((Path(self.folder.name) / name).stat().st_size, 1000, name)
        self.assertEqual(self.html.count("data:image/png;base64,"), len(charts))
        self.assertEqual(self.html.count("<h2>"), len(self.headings))


class TheStudysTable(unittest.TestCase):
    """The study's section over a real switchcost JSON put into a copy of the saved run: first
    after the summary, every figure it prints the study's, and the study's the raw row's."""

    @classmethod
    def setUpClass(cls):
        cls.results = saved_run()
        cls.results["switchcost"] = json.loads(SAVED_SWITCHCOST.read_text())
        cls.study = cls.results["switchcost"]["study"]
        with tempfile.TemporaryDirectory() as folder:
            report.write(copy.deepcopy(cls.results), folder)
            cls.md = (Path(folder) / "report.md").read_text()
        cls.lines = cls.md.split(f"\n## {study.TITLE}\n", 1)[1].split("\n## ", 1)[0].splitlines()

    def raw_row(self, figure):
        for row in self.results["switchcost"]["results"]:
            if all(row[key] == figure[key] for key in ("unit", "operation", "method", "pinned")):
                return row
        self.fail(f"no raw row for {figure}")

    def quoted(self):
        """Every figure the study quotes: the rows' and the questions'."""
        for row in self.study["rows"]:
            yield from (row[name] for name in ("switch", "create", "memory"))
        for question in self.study["questions"]:
            yield from question["figures"]

    def test_first_section_after_the_summary(self):
        headings = re.findall(r"^## (.*)$", self.md, re.MULTILINE)
        self.assertEqual(headings[:3], ["What the numbers show", study.TITLE, "Machine"])

    def test_every_figure_is_the_raw_rows(self):
        measured = [f for f in self.quoted() if f["measured"]]
        self.assertGreater(len(measured), 20)
        for figure in measured:
            self.assertEqual(figure["value"], self.raw_row(figure)["value"], figure["label"])

    def test_the_table_prints_the_studys_figures(self):
        rows = [line for line in self.lines if line.startswith("| ") and "---" not in line][1:]
        self.assertEqual(len(rows), len(self.study["rows"]))
        for line, row in zip(rows, self.study["rows"]):
            cells = [c.strip() for c in line.strip("|").split("|")]
            self.assertEqual(cells[0], row["kind"])
            self.assertEqual(cells[5:], [row[name]["text"] for name in ("switch", "create",
                                                                        "memory")])
        for unit in ("process", "thread", "fiber", "coroutine"):
            row = next(r for r in self.study["rows"] if r["unit"] == unit)
            self.assertTrue(row["switch"]["measured"], unit)

    def test_every_question_answered_and_flags_listed(self):
        text = "\n".join(self.lines)
        for question in self.study["questions"]:
            self.assertIn(f"- {question['question']} — {question['answer']}", text)
            for figure in question["figures"]:
                if figure["measured"] and not question["flagged"]:
                    self.assertIn(figure["text"], question["answer"], figure["label"])
        for flag in self.study["flags"]:
            self.assertIn(f"- ⚠ {flag['question']}: {flag['why']}", text)

    def test_a_flag_is_shown_as_one(self):
        # The fixture's run had nothing to flag; a flag the study holds is listed, marked.
        switchcost = copy.deepcopy(self.results["switchcost"])
        switchcost["study"]["flags"] = [{"question": "cow", "why": "below a minor page fault"}]
        lines = study.section(switchcost)
        self.assertIn("- ⚠ cow: below a minor page fault", lines)
        self.assertNotIn("No figure fell outside what the kernel's design allows.", lines)


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
