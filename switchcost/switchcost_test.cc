// Runs the real `switchyard switchcost --quick --json FILE` once and checks what it measured: the
// schema, that every figure is a measured median with a spread, and the orderings that hold on
// any machine. The orderings compare figures of one run with each other, never with a constant.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace {

using nlohmann::json;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Under a sanitizer a fork copies the page tables of its shadow memory (about 20 ms each on a
// 2-core machine) and a thread is slow to create, so the memory figures are taken with fewer
// units alive: with a thousand, that step alone takes minutes.
constexpr int kMostAlive = 100;
const char* const kAliveFlag = "--alive 20,100";
#else
constexpr int kMostAlive = 1000;
const char* const kAliveFlag = "--alive 100,1000";
#endif
const std::string kAtMost = "@" + std::to_string(kMostAlive);

class SwitchcostRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char path[] = "/tmp/switchcost_test_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    const std::string command = std::string(SWITCHYARD_BINARY) + " switchcost --quick " +
                                kAliveFlag + " --json " + path + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output_ += buffer;
    exit_code_ = WEXITSTATUS(pclose(pipe));
    std::ifstream file(path);
    try {
      report_ = json::parse(file);
    } catch (const json::exception& e) {
      parse_error_ = e.what();
    }
    unlink(path);
  }

  void SetUp() override {
    ASSERT_EQ(exit_code_, 0) << output_;
    ASSERT_TRUE(parse_error_.empty()) << parse_error_ << "\n" << output_;
  }

  // The one figure of `unit`/`operation`/`method`/`pinned`; fails the test if absent.
  static double Value(const std::string& unit, const std::string& operation,
                      const std::string& method, bool pinned) {
    for (const json& figure : report_["results"]) {
      if (figure["unit"] == unit && figure["operation"] == operation &&
          figure["method"] == method && figure["pinned"] == pinned) {
        return figure["value"].get<double>();
      }
    }
    ADD_FAILURE() << "no figure " << unit << " " << operation << " " << method
                  << (pinned ? " pinned" : "");
    return NAN;
  }

  static inline std::string output_;
  static inline int exit_code_ = -1;
  static inline json report_;
  static inline std::string parse_error_;
};

TEST_F(SwitchcostRun, PrintsTheTableAndTheMachine) {
  EXPECT_NE(output_.find("One switch saves and restores"), std::string::npos) << output_;
  const json& machine = report_["machine"];
  EXPECT_FALSE(machine["cpu_model"].get<std::string>().empty());
  EXPECT_GE(machine["cores"].get<int>(), 1);
  EXPECT_NE(machine["kernel"].get<std::string>().find("Linux"), std::string::npos);
  EXPECT_TRUE(machine["mitigations"].is_object());
  EXPECT_FALSE(machine["mitigations"].empty()) << "/sys/devices/system/cpu/vulnerabilities";
}

TEST_F(SwitchcostRun, EveryFigureIsAMeasuredMedianWithASpread) {
  // Every kind of unit switchcost measures (its own names, not the model list).
  const std::set<std::string> units = {"process",      "thread",   "fiber",        "ucontext",
                                       "coroutine",    "call",     "syscall",      "goroutine",
                                       "asyncio-task", "greenlet", "python-thread"};
  const std::set<std::string> operations = {"switch", "create",     "memory",
                                            "touch",  "tlb-misses", "fork",
                                            "copy",   "page-fault", "cow-fault"};
  const json& results = report_["results"];
  ASSERT_TRUE(results.is_array());
  ASSERT_GE(results.size(), 20u);
  for (const json& figure : results) {
    SCOPED_TRACE(figure.dump());
    EXPECT_TRUE(units.count(figure.at("unit").get<std::string>()));
    EXPECT_TRUE(operations.count(figure.at("operation").get<std::string>()));
    EXPECT_FALSE(figure.at("method").get<std::string>().empty());
    EXPECT_TRUE(figure.at("pinned").is_boolean());
    const double value = figure.at("value").get<double>();
    const double spread = figure.at("spread").get<double>();
    EXPECT_TRUE(std::isfinite(value) && std::isfinite(spread));
    EXPECT_GE(figure.at("runs").get<int>(), 3);
    if (figure.at("operation") == "tlb-misses") {
      EXPECT_EQ(figure.at("unit_of_value"), "count");  // its own test checks the values
    } else if (figure.at("operation") == "memory") {
      EXPECT_EQ(figure.at("unit_of_value"), "bytes");
      EXPECT_GE(value, 0);
      EXPECT_GE(spread, 0);
    } else {
      // Timings of repeated runs never agree to the last bit: a zero spread would mean a constant.
      EXPECT_EQ(figure.at("unit_of_value"), "ns");
      EXPECT_GT(value, 0);
      EXPECT_GT(spread, 0);
    }
  }
}

TEST_F(SwitchcostRun, SwitchesOrderAsTheirWorkDoes) {
  // A fiber switch swaps registers and stacks; swapcontext adds a system call for the mask.
  EXPECT_LT(Value("fiber", "switch", "boost-fiber", true),
            Value("ucontext", "switch", "swapcontext", true));
  // A kernel switch is at least a system call plus the scheduler.
  const double syscall = Value("syscall", "switch", "getppid", true);
  for (const char* unit : {"process", "thread"}) {
    for (const char* method : {"futex", "pipe"}) {
      EXPECT_LT(syscall, Value(unit, "switch", method, true)) << unit << " " << method;
    }
  }
  EXPECT_LT(Value("call", "switch", "noinline-call", true), syscall);
}

TEST_F(SwitchcostRun, CoroutineTransferIsCheaperThanAFiberSwitch) {
  if (kUnderAsan) {
    GTEST_SKIP() << "under AddressSanitizer every coroutine frame access is instrumented while "
                    "Boost.Context's switch is uninstrumented assembly, so the two are not "
                    "comparable; the release and dev presets check this ordering";
  }
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "under ThreadSanitizer every coroutine frame access is instrumented while "
                  "Boost.Context's switch is uninstrumented assembly, so the two are not "
                  "comparable; the release and dev presets check this ordering";
#endif
  EXPECT_LT(Value("coroutine", "switch", "symmetric-transfer", true),
            Value("fiber", "switch", "boost-fiber", true));
}

TEST_F(SwitchcostRun, CreationOrdersAsItsWorkDoes) {
  const double coroutine = Value("coroutine", "create", "new-frame+run+destroy", false);
  const double fiber = Value("fiber", "create", "boost-fiber", false);
  const double thread = Value("thread", "create", "pthread_create+join", false);
  const double process = Value("process", "create", "fork+exit+wait", false);
  EXPECT_LT(coroutine, fiber);
  EXPECT_LT(fiber, thread);
  EXPECT_LT(thread, process);
}

TEST_F(SwitchcostRun, MeasuresAcrossTwoCpusWhenItHasThem) {
  if (report_["machine"]["allowed_cpus"].get<int>() < 2) {
    GTEST_SKIP() << "this process may use only one CPU, so there is no 2-CPU ping-pong";
  }
  for (const char* unit : {"process", "thread"}) {
    for (const char* method : {"futex", "pipe"}) {
      EXPECT_GT(Value(unit, "switch", method, false), 0) << unit << " " << method;
    }
  }
}

TEST_F(SwitchcostRun, MemoryGrowsWithEveryUnit) {
  // A process has page tables of its own; threads share their process's. Kernel stacks are read
  // from a system-wide counter that other processes move, so they are not asserted on here.
  const double process_tables = Value("process", "memory", "pagetables" + kAtMost, false);
  EXPECT_GT(process_tables, 4096);
  EXPECT_GT(process_tables, Value("thread", "memory", "stack-default/pagetables" + kAtMost, false));
  EXPECT_GT(Value("process", "memory", "pss" + kAtMost, false),
            Value("coroutine", "memory", "pss" + kAtMost, false));
  EXPECT_GT(Value("coroutine", "memory", "frame-bytes", false), 16);
}

// The peers' runtimes (peer_units.h), measured by their own programs. A sanitizer build tests our
// C++ and runs none of them, so there the rows are left out, said on stderr.
TEST_F(SwitchcostRun, PeerUnitsAreMeasuredBesideTheirCppCounterparts) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_NE(output_.find("the Go and Python rows are left out"), std::string::npos) << output_;
  GTEST_SKIP() << "the peers' programs are not built in a sanitizer build";
#endif
  const double goroutine = Value("goroutine", "switch", "chan-pingpong", true);
  const double task = Value("asyncio-task", "switch", "future-pingpong/asyncio", true);
  const double greenlet = Value("greenlet", "switch", "greenlet.switch", true);
  const double python_thread = Value("python-thread", "switch", "lock-pingpong", true);
  // What each runtime's design says about the order, by a wide margin: a greenlet switch is a
  // stack copy in C, a goroutine's a runtime call; a task switch goes through the event loop in
  // Python; a Python thread switch is a kernel switch plus the GIL.
  EXPECT_LT(greenlet, task);
  EXPECT_LT(goroutine, task);
  EXPECT_LT(task, python_thread);
  EXPECT_GT(python_thread, Value("thread", "switch", "futex", true));
  EXPECT_GT(Value("goroutine", "create", "go+wg.Done", false), 0);
  EXPECT_GT(Value("asyncio-task", "memory", "pss" + kAtMost, false), 0);
  EXPECT_GT(Value("greenlet", "memory", "pss" + kAtMost, false), 0);
}

// What a process switch pays that a thread switch does not (tlb_units.h): the switch with a pass
// over pages between switches, the pass alone, the facts about the address space, and the TLB
// miss counts where the machine exposes them. Process against thread is not asserted: on a busy
// machine, or with PTI and no PCID, the two can come out in either order.
TEST_F(SwitchcostRun, TlbReachIsMeasuredForProcessesAndThreads) {
  const json& facts = report_["machine"]["address_space"];
  ASSERT_TRUE(facts.is_object()) << report_["machine"].dump();
  EXPECT_TRUE(facts.at("pcid").is_boolean());
  EXPECT_TRUE(facts.at("invpcid").is_boolean());
  EXPECT_FALSE(facts.at("pti").get<std::string>().empty());
  const bool counters = facts.at("tlb_counters").get<bool>();
  EXPECT_NE(output_.find("Address space: "), std::string::npos) << output_;
  for (const int pages : {64, 1024}) {
    const std::string name = "pages" + std::to_string(pages);
    for (const char* unit : {"process", "thread"}) {
      EXPECT_GT(Value(unit, "switch", "futex+" + name, true), 0) << unit << " " << name;
      EXPECT_GT(Value(unit, "touch", name, true), 0) << unit << " " << name;
      if (counters) {
        EXPECT_GE(Value(unit, "tlb-misses", "dTLB-load-misses/futex+" + name, true), 0);
      }
    }
  }
  if (!counters) {
    EXPECT_FALSE(facts.at("tlb_counters_reason").get<std::string>().empty());
    EXPECT_NE(output_.find("TLB miss counters are not exposed"), std::string::npos) << output_;
    for (const json& figure : report_["results"]) {
      EXPECT_NE(figure["operation"], "tlb-misses") << figure.dump();
    }
  }
}

// The study's table (study.h): printed at the end, and in the JSON each figure it quotes is the
// value of the raw row it names.
TEST_F(SwitchcostRun, TheStudysTableQuotesTheRawRows) {
  EXPECT_NE(output_.find("The study's table"), std::string::npos) << output_;
  EXPECT_NE(output_.find("The study's questions, answered"), std::string::npos) << output_;
  ASSERT_TRUE(report_.contains("study")) << report_.dump();
  const json& study = report_["study"];
  std::set<std::string> units;
  std::vector<json> quoted;
  for (const json& row : study["rows"]) {
    units.insert(row["unit"].get<std::string>());
    for (const char* name : {"switch", "create", "memory"}) quoted.push_back(row[name]);
  }
  for (const char* unit : {"process", "thread", "fiber", "coroutine"}) {
    EXPECT_TRUE(units.count(unit)) << unit;
  }
  for (const json& question : study["questions"]) {
    EXPECT_FALSE(question["answer"].get<std::string>().empty()) << question.dump();
    for (const json& figure : question["figures"]) quoted.push_back(figure);
  }
  int measured = 0;
  for (const json& figure : quoted) {
    if (!figure["measured"].get<bool>()) continue;
    ++measured;
    SCOPED_TRACE(figure.dump());
    EXPECT_EQ(figure["value"].get<double>(),
              Value(figure["unit"].get<std::string>(), figure["operation"].get<std::string>(),
                    figure["method"].get<std::string>(), figure["pinned"].get<bool>()));
  }
  EXPECT_GE(measured, 12);
  // The four C++ units' switch, creation and memory are always measured.
  for (const json& row : study["rows"]) {
    const std::string unit = row["unit"];
    if (unit == "process" || unit == "thread" || unit == "fiber" || unit == "coroutine") {
      for (const char* name : {"switch", "create", "memory"}) {
        EXPECT_TRUE(row[name]["measured"].get<bool>()) << unit << " " << name;
      }
    }
  }
  EXPECT_TRUE(study["flags"].is_array());
}

// Fork and copy-on-write (fork_units.h): fork copies the parent's page tables, so it costs more
// the more the parent has resident; a copy-on-write fault is a fresh page plus a copy of the old.
TEST_F(SwitchcostRun, ForkCostGrowsWithResidentMemoryAndCowCostsACopy) {
  auto find = [](const std::string& operation, const std::string& method) -> const json* {
    for (const json& figure : report_["results"]) {
      if (figure["unit"] == "process" && figure["operation"] == operation &&
          figure["method"] == method) {
        return &figure;
      }
    }
    return nullptr;
  };
  const double small = Value("process", "fork", "fork+exit+wait/rss-1MiB", false);
  const double middle = Value("process", "fork", "fork+exit+wait/rss-64MiB", false);
  // --quick forks 256 MiB at most (1 GiB without it).
  const double large = Value("process", "fork", "fork+exit+wait/rss-256MiB", false);
  EXPECT_GT(small, 0);
  EXPECT_GT(middle, 0);
  // 256 MiB of 4 KiB pages is 512 KiB of page tables to copy, 64 MiB a quarter of that: the
  // largest fork is typically many times the smallest. Between 1 MiB and 64 MiB the difference
  // can drown in the noise of a machine whose every fork costs milliseconds, so only the order
  // of the largest is asked for.
  EXPECT_GT(large, middle);
  EXPECT_GE(large, 1.5 * small);
  for (const char* method :
       {"fork+exec+wait/rss-64MiB", "posix_spawn+wait/rss-64MiB", "vfork+exit+wait/rss-64MiB"}) {
    EXPECT_GT(Value("process", "fork", method, false), 0) << method;
  }

  const double minor = Value("process", "page-fault", "minor/4KiB", false);
  const double copy = Value("process", "copy", "memcpy/4KiB", false);
  const double cow = Value("process", "cow-fault", "4KiB", false);
  EXPECT_GT(minor, 0);
  EXPECT_GT(copy, 0);
  // A COW fault allocates and maps a page as a minor fault does, then copies instead of zeroing:
  // 0.5x is a generous floor for noise.
  EXPECT_GE(cow, 0.5 * minor);

  const double child_before = Value("process", "memory", "cow/child-pss-before", false);
  const double child_after = Value("process", "memory", "cow/child-pss-after", false);
  EXPECT_GT(Value("process", "memory", "cow/parent-pss-before", false), 0);
  EXPECT_GT(Value("process", "memory", "cow/parent-pss-after", false), 0);
  EXPECT_GT(child_after, child_before) << "the child's writes must end the sharing";

  // Only where transparent huge pages could be had (stderr says why they are left out).
  const char* const huge_rows[][2] = {
      {"page-fault", "minor/2MiB"}, {"copy", "memcpy/2MiB"}, {"cow-fault", "2MiB"}};
  for (const auto& [operation, method] : huge_rows) {
    if (const json* figure = find(operation, method)) {
      EXPECT_GT((*figure)["value"].get<double>(), 0) << operation << " " << method;
    }
  }
}

}  // namespace
