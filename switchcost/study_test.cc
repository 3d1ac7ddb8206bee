// BuildStudy over synthetic figures: the answers carry the figures of the rows they name, figures
// outside what the kernel's design allows are flagged rather than answered, and absent rows read
// "-" or "not measured".
#include "switchcost/study.h"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchyard::switchcost {
namespace {

Figure Ns(const std::string& unit, const std::string& operation, const std::string& method,
          bool pinned, double value, double spread = 1) {
  return Figure{unit, operation, method, pinned, value, "ns", spread, 3, ""};
}

Figure Bytes(const std::string& unit, const std::string& method, double value) {
  return Figure{unit, "memory", method, false, value, "bytes", 1, 3, ""};
}

// A run with every row the study reads, each value distinct so a misplaced figure shows.
std::vector<Figure> FullRun() {
  return {
      Ns("process", "switch", "futex", true, 8612),
      // The kinds of unit switchcost measures, not the model list.
      Ns("thread", "switch", "futex", true, 4493),
      Ns("fiber", "switch", "boost-fiber", true, 6.49),
      Ns("coroutine", "switch", "symmetric-transfer", true, 3.19),
      Ns("goroutine", "switch", "chan-pingpong", true, 121),
      Ns("goroutine", "switch", "chan-pingpong", false, 143),
      Ns("asyncio-task", "switch", "future-pingpong/asyncio", true, 4960),
      Ns("greenlet", "switch", "greenlet.switch", true, 240),
      Ns("python-thread", "switch", "lock-pingpong", true, 11300),
      Ns("syscall", "switch", "getppid", true, 1184),
      Ns("process", "create", "fork+exit+wait", false, 3.37e6),
      Ns("thread", "create", "pthread_create+join", false, 41183),
      Ns("fiber", "create", "boost-fiber", false, 66.6),
      Ns("coroutine", "create", "new-frame+run+destroy", false, 20.8),
      Bytes("process", "pss@100", 79749),
      Bytes("process", "pss@1000", 59526),
      Bytes("process", "pagetables@1000", 81920),
      Bytes("process", "kernelstack@1000", 16351),
      Bytes("thread", "stack-default/pss@1000", 8723),
      Bytes("fiber", "stack-default/pss@1000", 4419),
      Bytes("coroutine", "pss@1000", 67.5),
      Bytes("coroutine", "frame-bytes", 40),
      Ns("process", "fork", "fork+exit+wait/rss-1MiB", false, 120000),
      Ns("process", "fork", "fork+exit+wait/rss-64MiB", false, 900000),
      Ns("process", "fork", "fork+exit+wait/rss-1GiB", false, 12e6),
      Ns("process", "fork", "vfork+exit+wait/rss-64MiB", false, 80000),
      Ns("process", "page-fault", "minor/4KiB", false, 700),
      Ns("process", "copy", "memcpy/4KiB", false, 300),
      Ns("process", "cow-fault", "4KiB", false, 1500),
  };
}

const AddressSpace kNoPcidPti{true, false, "Mitigation: PTI"};

const Question& Ask(const Study& study, const std::string& id) {
  for (const Question& question : study.questions) {
    if (question.id == id) return question;
  }
  throw std::runtime_error("no question " + id);
}

const StudyRow& Row(const Study& study, const std::string& unit) {
  for (const StudyRow& row : study.rows) {
    if (row.unit == unit) return row;
  }
  throw std::runtime_error("no row " + unit);
}

TEST(Study, RowsCarryTheFiguresOfTheRowsTheyName) {
  const Study study = BuildStudy(FullRun(), kNoPcidPti);
  ASSERT_EQ(study.rows.size(), 8u);
  const StudyRow& process = Row(study, "process");
  EXPECT_EQ(process.switch_time.row.method, "futex");
  EXPECT_TRUE(process.switch_time.row.pinned);
  EXPECT_EQ(process.switch_time.row.value, 8612);
  EXPECT_EQ(process.switch_time.text, "8.61 µs");
  EXPECT_EQ(process.create_time.row.value, 3.37e6);
  // The most units alive: @1000, not @100.
  EXPECT_EQ(process.memory.row.method, "pss@1000");
  EXPECT_EQ(process.memory.text, "58.1 KiB");
  EXPECT_EQ(Row(study, "thread").memory.row.method, "stack-default/pss@1000");
  EXPECT_EQ(Row(study, "coroutine").switch_time.text, "3.19 ns");
  EXPECT_EQ(Row(study, "goroutine").switch_time.row.value, 121);
}

TEST(Study, AnswersQuoteTheirFigures) {
  const Study study = BuildStudy(FullRun(), kNoPcidPti);
  const Question& switches = Ask(study, "switch");
  EXPECT_NE(switches.answer.find("8.61 µs"), std::string::npos) << switches.answer;
  EXPECT_NE(switches.answer.find("3.19 ns"), std::string::npos) << switches.answer;
  for (const Quoted& figure : switches.figures) {
    if (figure.measured) {
      EXPECT_NE(switches.answer.find(figure.text), std::string::npos) << figure.label;
    }
  }
  const Question& memory = Ask(study, "memory");
  EXPECT_NE(memory.answer.find("80 KiB of page tables"), std::string::npos) << memory.answer;
  EXPECT_NE(memory.answer.find("its frame 40 B"), std::string::npos) << memory.answer;
  const Question& mn = Ask(study, "m-n");
  EXPECT_NE(mn.answer.find("121 ns"), std::string::npos) << mn.answer;
  EXPECT_NE(mn.answer.find("4.49 µs"), std::string::npos) << mn.answer;
  EXPECT_TRUE(study.flags.empty());
}

TEST(Study, TheTlbAnswerFollowsTheCpu) {
  const Study without = BuildStudy(FullRun(), kNoPcidPti);
  EXPECT_NE(Ask(without, "tlb").answer.find("no PCID"), std::string::npos);
  EXPECT_NE(Ask(without, "tlb").answer.find("1.18 µs"), std::string::npos);  // the system call
  EXPECT_NE(Row(without, "thread").verdict.find("flushes it too"), std::string::npos);
  const Study with = BuildStudy(FullRun(), AddressSpace{true, true, "Not affected"});
  EXPECT_NE(Ask(with, "tlb").answer.find("has PCID"), std::string::npos);
  EXPECT_EQ(Row(with, "process").verdict.rfind("incomplete", 0), 0u);
  EXPECT_EQ(Row(with, "thread").verdict.rfind("holds", 0), 0u);
}

TEST(Study, ForkRisingWithTheParentIsAnswered) {
  const Study study = BuildStudy(FullRun(), kNoPcidPti);
  const Question& fork = Ask(study, "fork");
  EXPECT_FALSE(fork.flagged);
  EXPECT_NE(fork.answer.find("1 MiB 120 µs, 64 MiB 900 µs, 1 GiB 12 ms"), std::string::npos)
      << fork.answer;
  EXPECT_NE(fork.answer.find("vfork 80 µs (64 MiB)"), std::string::npos) << fork.answer;
  ASSERT_GE(fork.figures.size(), 3u);
  EXPECT_EQ(fork.figures[0].row.method, "fork+exit+wait/rss-1MiB");
  EXPECT_EQ(fork.figures[2].row.method, "fork+exit+wait/rss-1GiB");
}

TEST(Study, ForkNotRisingIsFlagged) {
  std::vector<Figure> figures = FullRun();
  for (Figure& figure : figures) {
    if (figure.method == "fork+exit+wait/rss-64MiB") figure.value = 100000;  // below 1 MiB's
  }
  const Study study = BuildStudy(figures, kNoPcidPti);
  const Question& fork = Ask(study, "fork");
  EXPECT_TRUE(fork.flagged);
  EXPECT_EQ(fork.answer.rfind("flagged: ", 0), 0u) << fork.answer;
  ASSERT_EQ(study.flags.size(), 1u);
  EXPECT_EQ(study.flags[0].question, "fork");
  EXPECT_NE(study.flags[0].why.find("64 MiB"), std::string::npos);
}

TEST(Study, CowWithinTheKernelsBoundsIsAnswered) {
  const Study study = BuildStudy(FullRun(), kNoPcidPti);
  const Question& cow = Ask(study, "cow");
  EXPECT_FALSE(cow.flagged);
  EXPECT_NE(cow.answer.find("costs 1.5 µs"), std::string::npos) << cow.answer;
  EXPECT_NE(cow.answer.find("700 ns"), std::string::npos) << cow.answer;
  EXPECT_EQ(cow.figures[0].row.operation, "cow-fault");
  EXPECT_EQ(cow.figures[0].row.value, 1500);
  // Above fault + copy (700 + 300 ns) but within the bound: said as such, not as "between".
  EXPECT_NE(cow.answer.find("by 500 ns"), std::string::npos) << cow.answer;
  EXPECT_EQ(cow.answer.find("between"), std::string::npos) << cow.answer;
  std::vector<Figure> figures = FullRun();
  for (Figure& figure : figures) {
    if (figure.operation == "cow-fault") figure.value = 900;
  }
  const Study within = BuildStudy(figures, kNoPcidPti);
  EXPECT_NE(Ask(within, "cow").answer.find("between a minor page fault"), std::string::npos)
      << Ask(within, "cow").answer;
}

TEST(Study, CowBelowAMinorFaultOrFarAboveFaultPlusCopyIsFlagged) {
  for (const double value : {500.0, 3100.0}) {  // < 0.8 × 700; > 3 × (700 + 300)
    std::vector<Figure> figures = FullRun();
    for (Figure& figure : figures) {
      if (figure.operation == "cow-fault") figure.value = value;
    }
    const Study study = BuildStudy(figures, kNoPcidPti);
    const Question& cow = Ask(study, "cow");
    EXPECT_TRUE(cow.flagged) << value;
    EXPECT_EQ(cow.answer.rfind("flagged: ", 0), 0u) << cow.answer;
    EXPECT_EQ(cow.answer.find("costs "), std::string::npos) << cow.answer;
    EXPECT_TRUE(cow.figures[0].flagged);
    ASSERT_EQ(study.flags.size(), 1u);
    EXPECT_EQ(study.flags[0].question, "cow");
  }
}

// A write to a shared huge page may split it and copy 4 KiB alone (Linux since 5.8): a 2 MiB
// copy-on-write fault below a 2 MiB fresh fault is the kernel's design; below a 4 KiB one it is
// not.
TEST(Study, AHugeCowFaultIsBoundedBelowByA4KiBFault) {
  for (const auto& [cow, flagged] : {std::pair{50'000.0, false}, {400.0, true}}) {
    std::vector<Figure> figures = FullRun();
    figures.push_back(Ns("process", "page-fault", "minor/2MiB", false, 100'000));
    figures.push_back(Ns("process", "copy", "memcpy/2MiB", false, 150'000));
    figures.push_back(Ns("process", "cow-fault", "2MiB", false, cow));
    const Study study = BuildStudy(figures, kNoPcidPti);
    const Question& answer = Ask(study, "cow");
    EXPECT_EQ(answer.flagged, flagged) << answer.answer;
    EXPECT_EQ(answer.answer.find("flagged: ") != std::string::npos, flagged) << answer.answer;
    if (!flagged) {
      EXPECT_NE(answer.answer.find("split the huge page"), std::string::npos) << answer.answer;
    }
  }
}

TEST(Study, AProcessSwitchCheaperThanAThreadsIsNoiseNotAFlag) {
  std::vector<Figure> figures = FullRun();
  for (Figure& figure : figures) {
    if (figure.unit == "process" && figure.method == "futex") figure.value = 3000;
  }
  const Study study = BuildStudy(figures, kNoPcidPti);
  EXPECT_TRUE(study.flags.empty());
  EXPECT_FALSE(Ask(study, "process-vs-thread").flagged);
  EXPECT_NE(Ask(study, "process-vs-thread").answer.find("noise"), std::string::npos);
}

TEST(Study, TheTlbRowsAnswerWhatAProcessSwitchPays) {
  std::vector<Figure> figures = FullRun();
  for (const auto& [unit, value] : {std::pair{"process", 30000.0}, {"thread", 20000.0}}) {
    figures.push_back(Ns(unit, "switch", "futex+pages64", true, value / 2));
    figures.push_back(Ns(unit, "switch", "futex+pages1024", true, value));
    figures.push_back(Figure{unit, "tlb-misses", "dTLB-load-misses/futex+pages1024", true,
                             value / 100, "count", 1, 3, ""});
  }
  figures.push_back(Ns("process", "touch", "pages1024", true, 9000));
  const Study study = BuildStudy(figures, kNoPcidPti);
  const Question& answer = Ask(study, "process-vs-thread");
  EXPECT_NE(answer.answer.find("With 1024 pages touched"), std::string::npos) << answer.answer;
  EXPECT_NE(answer.answer.find("process 30 µs, thread 20 µs: 10 µs more"), std::string::npos)
      << answer.answer;
  EXPECT_NE(answer.answer.find("the pass alone: 9 µs"), std::string::npos) << answer.answer;
  EXPECT_NE(answer.answer.find("process 300, thread 200"), std::string::npos) << answer.answer;
}

TEST(Study, MissingRowsReadNotMeasuredWithoutACrash) {
  const Study empty = BuildStudy({}, AddressSpace{});
  ASSERT_EQ(empty.rows.size(), 8u);
  for (const StudyRow& row : empty.rows) {
    EXPECT_EQ(row.switch_time.text, "-");
    EXPECT_EQ(row.create_time.text, "-");
    EXPECT_EQ(row.memory.text, "-");
    EXPECT_FALSE(row.switch_time.measured);
  }
  EXPECT_NE(Ask(empty, "switch").answer.find("not measured"), std::string::npos);
  EXPECT_EQ(Ask(empty, "fork").answer.rfind("Not measured", 0), 0u);
  EXPECT_EQ(Ask(empty, "cow").answer.rfind("Not measured", 0), 0u);
  EXPECT_TRUE(empty.flags.empty());
  // The parts that were measured are answered; copy-on-write without its bounds is not checked.
  const Study partial = BuildStudy({Ns("process", "cow-fault", "4KiB", false, 1500)}, kNoPcidPti);
  EXPECT_NE(Ask(partial, "cow").answer.find("not checked"), std::string::npos);
  std::ostringstream printed;
  PrintStudy(empty, printed);
  EXPECT_NE(printed.str().find("The study's table"), std::string::npos);
  const nlohmann::json json = StudyJson(empty);
  EXPECT_EQ(json["rows"][0]["switch"]["text"], "-");
  EXPECT_FALSE(json["rows"][0]["switch"].contains("value"));
}

TEST(Study, JsonHoldsEachFigureWithTheRowItCameFrom) {
  const nlohmann::json json = StudyJson(BuildStudy(FullRun(), kNoPcidPti));
  const nlohmann::json& process = json["rows"][0];
  EXPECT_EQ(process["unit"], "process");
  EXPECT_EQ(process["switch"]["method"], "futex");
  EXPECT_EQ(process["switch"]["pinned"], true);
  EXPECT_EQ(process["switch"]["value"], 8612);
  EXPECT_EQ(process["switch"]["text"], "8.61 µs");
  EXPECT_EQ(json["address_space"]["pti"], "Mitigation: PTI");
  EXPECT_EQ(json["questions"].size(), 8u);
  EXPECT_TRUE(json["flags"].empty());
}

}  // namespace
}  // namespace switchyard::switchcost
