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

from . import anatomy, figures, report, study
from .scenarios import BY_NAME, PLANS, SCENARIOS, Block, Cpu, Getset, Wait, numbered_title

SAVED_RUN = Path(__file__).resolve().parent / "testdata" / "results.json"
# A real `switchyard switchcost --quick --json` with its "study" (the saved run predates it).
SAVED_SWITCHCOST = Path(__file__).resolve().parent / "testdata" / "switchcost-study.json"


def saved_run():
    return json.loads(SAVED_RUN.read_text())


def first_table(lines):
    """The lines of the first table among `lines`: a section may have more tables after it."""
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")),
               len(lines))
    return lines[start:end]


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
            rows = [line for line in first_table(self.section(numbered_title(scenario)))
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


# What the registry says the saved run's models are made of (unit, shared unit, waits in, stack
# mapped; the run predates the field), and a go peer's: the run's own models, not the model list.
SAVED_RUN_MADE_OF = {
    "prefork": ("", "process pool forked at start", "recv", False),
    "thread_per_conn": ("thread", "", "recv", True),
    "thread_pool": ("", "shared pool", "epoll", False),
    "fiber": ("fiber", "", "epoll", True),
    "coroutine": ("coroutine", "", "epoll", False),
    "grpc": ("", "shared (gRPC's threads)", "epoll", False),
    "go": ("goroutine", "", "epoll", False)}


def with_anatomy(results):
    """The saved run (from before the idle scenario took connections apart) with what it reads
    now put into each model's idle point, and a go peer: synthetic figures, to check the table's
    arithmetic and cells, not a measurement."""
    results["switchcost"] = json.loads(SAVED_SWITCHCOST.read_text())
    # A go peer made from the coroutine's row, and below the models that block in recv rather
    # than wait in epoll: named for what they are, not the model list.
    coroutine = next(m for m in results["models"] if m["model"] == "coroutine")
    results["models"].append(dict(copy.deepcopy(coroutine), model="go"))
    objects = {"caches": {"TCP": 2368, "sock_inode_cache": 832, "filp": 192, "dentry": 192},
               "missing": []}
    for model in results["models"]:
        point = model["scenarios"]["idle"][-1]
        epoll = model["model"] not in ("prefork", "thread_per_conn")
        caches = dict(objects["caches"], **({"eventpoll_epi": 128, "eventpoll_pwq": 64}
                                            if epoll else {}))
        point["kernel"] = {
            "socket_buffers": {"sockets": 1000, "bytes_per_socket": 512.0, "fields": {}},
            "socket_objects": {"caches": caches, "bytes_per_socket": sum(caches.values()),
                               "missing": []},
            "epoll": epoll, "tcp_memory_pages": {"before": 201, "during": 457}}
        # The models of the saved run that count their buffers: not the model list.
        if model["model"] in ("coroutine", "fiber", "thread_per_conn", "thread_pool"):
            point.update(buffer_bytes_per_connection=1024.0,
                         buffer_source="switchyard_io_buffer_bytes")
    idle = {m["model"]: m["scenarios"]["idle"][-1] for m in results["models"]}
    registry = {m: dict(zip(anatomy.MADE_OF, facts)) for m, facts in SAVED_RUN_MADE_OF.items()}
    for model, point in idle.items():
        point["made_of"] = anatomy.made_of(registry, model)
    # Measured figures put into some of them: not the model list.
    idle["redis"].update(buffer_bytes_per_connection=20480.0, buffer_source="mem_clients_normal")
    idle["fiber"]["unit_stacks"] = {"stacks": 1000, "mapping_bytes": 131072,
                                    "bytes_per_stack": 4096.0}
    idle["thread_per_conn"]["unit_stacks"] = {"stacks": 3, "why": "3 new stacks of 8192 KiB "
                                                                  "for 1000 connections"}
    return results


class WhereAnIdleConnectionsMemoryGoes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.results = with_anatomy(saved_run())
        cls.idle = {m["model"]: m["scenarios"]["idle"][-1] for m in cls.results["models"]}
        cls.study = {r["unit"]: r for r in cls.results["switchcost"]["study"]["rows"]}
        with tempfile.TemporaryDirectory() as folder:
            report.write(copy.deepcopy(cls.results), folder)
            section = (Path(folder) / "report.md").read_text().split(
                f"\n## {numbered_title(BY_NAME['idle'])}\n", 1)[1].split("\n## ", 1)[0]
        cls.after = section.split(report.ANATOMY_TITLE, 1)[1]
        lines = cls.after.splitlines()
        table = first_table(lines)
        cls.header = [c.strip() for c in table[0].strip("|").split("|")]
        cls.rows = {cells[0]: dict(zip(cls.header, cells)) for cells in
                    ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}
        cls.notes = "\n".join(lines[lines.index(table[-1]) + 1:])

    def test_one_row_a_model_at_its_most_connections(self):
        # Rows of the saved run, one a kind of unit or of counting: not the model list.
        self.assertEqual(self.header, ["model", "served", "PSS", "I/O buffers", "unit", "other",
                                       "kernel, not in PSS",
                                       "TCP pages, machine (before → during)"])
        self.assertEqual(list(self.rows), [m["model"] for m in self.results["models"]])
        self.assertEqual(self.rows["prefork"]["served"], "256 of 1,000")
        self.assertEqual(self.rows["coroutine"]["PSS"],
                         figures.kib(self.idle["coroutine"]["pss_bytes_per_connection"]))

    def test_buffers_absent_are_a_dash_and_redis_says_what_it_counts(self):
        # Rows of the saved run, one a kind of unit or of counting: not the model list.
        self.assertEqual(self.rows["coroutine"]["I/O buffers"], "1.0 KiB")
        self.assertEqual(self.rows["go"]["I/O buffers"], "—")
        self.assertEqual(self.rows["grpc"]["I/O buffers"], "—")
        self.assertEqual(self.rows["redis"]["I/O buffers"], "20.0 KiB (mem_clients_normal)")
        self.assertIn("mem_clients_normal: query and output buffers and the client structs",
                      self.notes)

    def test_the_unit_measured_else_the_switch_costs(self):
        # Rows of the saved run, one a kind of unit or of counting: not the model list.
        self.assertEqual(self.rows["fiber"]["unit"],
                         "4.0 KiB (stack pages touched, of 128.0 KiB stacks)")
        thread = self.study["thread"]
        self.assertEqual(self.rows["thread_per_conn"]["unit"],
                         f"{figures.kib(thread['memory']['value'])} ({thread['kind']}, "
                         "switch cost)")
        # The rest of the saved run's rows, each a kind of unit: not the model list.
        self.assertIn("thread_per_conn: 3 new stacks of 8192 KiB for 1000 connections", self.notes)
        goroutine = self.study["goroutine"]
        self.assertEqual(self.rows["go"]["unit"],
                         f"{figures.kib(goroutine['memory']['value'])} ({goroutine['kind']}, "
                         "switch cost)")
        self.assertEqual(self.rows["thread_pool"]["unit"], "shared pool")
        self.assertEqual(self.rows["prefork"]["unit"], "process pool forked at start")
        self.assertEqual(self.rows["redis"]["unit"], "none (one event loop)")

    def test_other_is_the_rest_negative_or_not(self):
        # A model of each kind of unit from the saved run: not the model list.
        coroutine = self.idle["coroutine"]["pss_bytes_per_connection"]
        self.assertEqual(self.rows["coroutine"]["other"], figures.kib(
            coroutine - 1024 - self.study["coroutine"]["memory"]["value"]))
        fiber = self.idle["fiber"]["pss_bytes_per_connection"]
        self.assertEqual(self.rows["fiber"]["other"], figures.kib(fiber - 1024 - 4096))
        redis = self.idle["redis"]["pss_bytes_per_connection"]
        self.assertTrue(self.rows["redis"]["other"].startswith("-"))
        self.assertEqual(self.rows["redis"]["other"], figures.kib(redis - 20480))
        self.assertTrue(self.rows["go"]["other"].endswith(" (buffers in it)"))

    def test_the_kernels_share_beside_and_its_objects_listed(self):
        self.assertEqual(self.rows["coroutine"]["kernel, not in PSS"],
                         "4.2 KiB (buffers 0.5 KiB, objects 3.7 KiB)")
        self.assertEqual(self.rows["prefork"]["kernel, not in PSS"],
                         "4.0 KiB (buffers 0.5 KiB, objects 3.5 KiB)")
        self.assertEqual(self.rows["fiber"]["TCP pages, machine (before → during)"], "201 → 457")
        # The saved run's models that wait in epoll: not the model list.
        epoll = "(redis, thread_pool, fiber, coroutine, grpc, go)"
        self.assertIn("TCP 2,368 B, sock_inode_cache 832 B, filp 192 B, dentry 192 B, "
                      "eventpoll_epi 128 B, eventpoll_pwq 64 B; the eventpoll ones only for the "
                      f"models that wait in epoll {epoll}", self.notes)

    def test_unreadable_slabs_and_runs_from_before(self):
        results = copy.deepcopy(self.results)
        for model in results["models"]:
            model["scenarios"]["idle"][-1]["kernel"]["socket_objects"] = {
                "unreadable": "/proc/slabinfo: Permission denied"}
        lines = report._anatomy(results)
        self.assertIn("Slab objects: unreadable (/proc/slabinfo: Permission denied).", lines)
        self.assertTrue(any("(buffers 0.5 KiB, objects unreadable)" in line for line in lines))
        del results["switchcost"]  # --no-switchcost: no unit figure, so no rest either
        row = next(line for line in report._anatomy(results) if line.startswith("| coroutine |"))
        self.assertIn("| — | — |", row)
        self.assertEqual(report._anatomy(saved_run()), [])  # no table, no empty heading


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
