#include "switchcost/switchcost.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "switchcost/fork_units.h"
#include "switchcost/helper_process.h"
#include "switchcost/measure.h"
#include "switchcost/os_units.h"
#include "switchcost/peer_units.h"
#include "switchcost/study.h"
#include "switchcost/tlb_units.h"
#include "switchcost/user_units.h"

namespace switchyard::switchcost {
namespace {

struct Machine {
  std::string cpu_model;
  int cores = 0;         // online CPUs
  int allowed_cpus = 0;  // CPUs this process may use (taskset, cgroups)
  std::string kernel;
  std::map<std::string, std::string> mitigations;  // /sys/devices/system/cpu/vulnerabilities
  AddressSpaceFacts address_space;                 // PCID, PTI, TLB miss counters
};

Machine DescribeMachine() {
  Machine machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      machine.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  }
  machine.cores = static_cast<int>(std::thread::hardware_concurrency());
  machine.allowed_cpus = static_cast<int>(AllowedCpus().size());
  utsname names{};
  uname(&names);
  machine.kernel = std::string(names.sysname) + " " + names.release + " " + names.machine;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator("/sys/devices/system/cpu/vulnerabilities", error)) {
    std::ifstream file(entry.path());
    std::string state;
    std::getline(file, state);
    machine.mitigations[entry.path().filename()] = state;
  }
  machine.address_space = ReadAddressSpaceFacts();
  return machine;
}

std::string Format(const Figure& figure) {
  if (figure.unit_of_value == "count") {
    char text[64];
    std::snprintf(text, sizeof text, "%.3g misses ±%.3g", figure.value, figure.spread);
    return text;
  }
  const bool ns = figure.unit_of_value == "ns";
  return (ns ? FormatNs(figure.value) : FormatBytes(figure.value)) + " ±" +
         (ns ? FormatNs(figure.spread) : FormatBytes(figure.spread));
}

const Figure* Find(const std::vector<Figure>& figures, const std::string& unit,
                   const std::string& operation, const std::string& method, bool pinned) {
  for (const Figure& figure : figures) {
    if (figure.unit == unit && figure.operation == operation && figure.method == method &&
        figure.pinned == pinned) {
      return &figure;
    }
  }
  return nullptr;
}

void PrintTable(const Machine& machine, const std::vector<Figure>& figures, const Options& options,
                std::ostream& out) {
  out << "Machine: " << machine.cpu_model << ", " << machine.cores << " CPUs online ("
      << machine.allowed_cpus << " allowed), " << machine.kernel << "\n";
  out << "Mitigations:";
  int not_affected = 0;
  for (const auto& [name, state] : machine.mitigations) {
    if (state == "Not affected") {
      ++not_affected;
    } else {
      out << "\n  " << name << ": " << state;
    }
  }
  out << "\n  (" << not_affected << " more: not affected)\n";
  out << DescribeAddressSpace(machine.address_space) << "\n\n";

  const int biggest = options.alive.back();
  const std::string at = "@" + std::to_string(biggest);
  struct Row {
    std::string unit, registers, stack, address_space, signal_mask, kernel, method;
    std::string memory_method;  // the PSS figure shown
    std::string kernel_prefix;  // method prefix of the page-table and kernel-stack figures
    std::string create_method;
  };
  const std::vector<Row> rows = {
      {"process", "all", "yes", "yes", "yes", "yes", "futex", "pss" + at, "", "fork+exit+wait"},
      {"thread", "all", "yes", "no", "yes", "yes", "futex", "stack-default/pss" + at,
       "stack-default/", "pthread_create+join"},
      {"ucontext", "all", "yes", "no", "yes", "yes (sigprocmask)", "swapcontext", "", "", ""},
      // The kinds of unit switchcost measures: its own names, not the model list.
      {"fiber", "callee-saved", "yes", "no", "no", "no", "boost-fiber", "stack-default/pss" + at,
       "", "boost-fiber"},
      {"coroutine", "none (a call)", "no", "no", "no", "no", "symmetric-transfer", "pss" + at, "",
       "new-frame+run+destroy"},
      {"syscall", "user regs", "kernel's", "no", "no", "yes", "getppid", "", "", ""},
      {"call", "callee-saved", "no", "no", "no", "no", "noinline-call", "", "", ""},
      // The peers' units (peer_units.h). A goroutine parks inside a runtime call, so its gobuf
      // keeps SP, PC and BP alone; asyncio's task is a coroutine frame resumed by the loop; a
      // greenlet copies its slice of the C stack in and out; a Python thread is an OS thread that
      // must also take the GIL.
      {"goroutine", "SP, PC, BP", "yes", "no", "no", "no", "chan-pingpong", "pss" + at, "",
       "go+wg.Done"},
      {"asyncio-task", "none (a call)", "no", "no", "no", "no", "future-pingpong/asyncio",
       "pss" + at, "", "create_task+run/asyncio"},
      {"greenlet", "callee-saved", "copied", "no", "no", "no", "greenlet.switch", "pss" + at, "",
       "greenlet+switch"},
      {"python-thread", "all", "yes", "no", "yes", "yes (+ GIL)", "lock-pingpong", "", "",
       "Thread.start+join"},
  };
  const std::vector<std::size_t> widths = {14, 14, 10, 11, 9, 18, 19, 19, 20, 22};
  const std::vector<std::string> header = {
      "unit",          "registers",
      "stack ptr",     "addr space",
      "sig mask",      "kernel entry",
      "switch, 1 CPU", "switch, 2 CPUs",
      "create",        "bytes per unit (" + std::to_string(biggest) + " alive)"};
  out << "One switch saves and restores, and costs (median of " << figures.front().runs
      << " runs ± half their range):\n";
  // The last column is not padded: no trailing blanks.
  for (std::size_t i = 0; i + 1 < header.size(); ++i) out << Pad(header[i], widths[i]);
  out << header.back();
  out << "\n";
  for (const Row& row : rows) {
    std::vector<std::string> cells = {row.unit,          row.registers,   row.stack,
                                      row.address_space, row.signal_mask, row.kernel};
    const Figure* one_cpu = Find(figures, row.unit, "switch", row.method, true);
    const Figure* two_cpus = Find(figures, row.unit, "switch", row.method, false);
    const Figure* create = Find(figures, row.unit, "create", row.create_method, false);
    const Figure* pss = Find(figures, row.unit, "memory", row.memory_method, false);
    // Kernel memory: page tables + kernel stack, each found under the row's prefix.
    const std::string& prefix = row.kernel_prefix;
    const Figure* tables = Find(figures, row.unit, "memory", prefix + "pagetables" + at, false);
    const Figure* stacks = Find(figures, row.unit, "memory", prefix + "kernelstack" + at, false);
    cells.push_back(one_cpu ? Format(*one_cpu) : "-");
    cells.push_back(two_cpus ? Format(*two_cpus) : "-");
    cells.push_back(create ? Format(*create) : "-");
    std::string memory = pss ? FormatBytes(pss->value) : "-";
    if (tables && stacks) {
      memory += " + " + FormatBytes(tables->value + stacks->value) + " kernel";
    }
    cells.push_back(memory);
    for (std::size_t i = 0; i + 1 < cells.size(); ++i) out << Pad(cells[i], widths[i]);
    out << cells.back();
    out << "\n";
  }

  out << "\nEvery figure (value ± half the range of the runs):\n";
  for (const Figure& figure : figures) {
    const std::string cpus = figure.operation != "switch" ? "" : figure.pinned ? "1 CPU" : "2 CPUs";
    out << "  " << Pad(figure.unit, 14) << Pad(figure.operation, 11) << Pad(figure.method, 34)
        << Pad(cpus, 7) << Pad(Format(figure), 22) << figure.note << "\n";
  }
  out << R"(
Method: a switch is timed over a loop of ping-pong round trips between two units and divided by
the switches in it; nothing is subtracted (the working-set notes give the difference from the
pass alone). Each figure is the median of its runs; a run's length is calibrated first. OS units
switch through futex(2) or a 4-byte pipe write/read, as perf bench sched pipe does; on 1 CPU both
are pinned to the same CPU, so each hand-over is one context switch, and the loop is timed by
the CPU time of both sides: the pair keeps the CPU busy, so that is its wall time minus what other
processes ran there. Across 2 CPUs the wall clock times it: a wake-up latency. Loops that run on
one thread (fibers, ucontext, coroutines, the call, the system call, fiber and coroutine
creation) are timed by that thread's CPU time, and thread and process creation by the CPU time
of creator and created (getrusage), so other processes that preempt them do not count. Memory is measured in a fresh child process: PSS from
/proc/PID/smaps_rollup, page tables from VmPTE in /proc/PID/status, kernel stacks as KernelStack
growth in /proc/meminfo (system-wide), each divided by the units alive. In the first table,
kernel = page tables + kernel stacks.
Go's and Python's rows come from programs in those runtimes (in switchcost/), measured the same
way: a goroutine switch is a channel ping-pong, 1 CPU with GOMAXPROCS=1, 2 CPUs with
GOMAXPROCS=2; a task switch a Future ping-pong on Python's own event loop (uvloop's is among
every figure).
)";
  if (machine.allowed_cpus < 2) {
    out << "Only one CPU is allowed to this process: the 2-CPU switch figures are left out.\n";
  }
}

nlohmann::json ToJson(const Machine& machine, const std::vector<Figure>& figures) {
  nlohmann::json results = nlohmann::json::array();
  for (const Figure& figure : figures) {
    results.push_back(FigureToJson(figure));
  }
  return {{"machine",
           {{"cpu_model", machine.cpu_model},
            {"cores", machine.cores},
            {"allowed_cpus", machine.allowed_cpus},
            {"kernel", machine.kernel},
            {"mitigations", machine.mitigations},
            {"address_space",
             {{"pcid", machine.address_space.pcid},
              {"invpcid", machine.address_space.invpcid},
              {"pti", machine.address_space.pti},
              {"tlb_counters", machine.address_space.tlb_counters},
              {"tlb_counters_reason", machine.address_space.tlb_counters_reason}}}}},
          {"results", results}};
}

}  // namespace

void AddFlags(CLI::App& command, Options& options) {
  command.add_flag("--quick", options.quick,
                   "Short runs and small counts (100 and 1000 alive): a few seconds, for CI");
  command.add_option("--json", options.json_path, "Also write every figure to FILE as JSON")
      ->option_text("FILE");
  command
      .add_option("--runs", options.runs, "Repeated runs per figure (default 5; 3 with --quick)")
      ->check(CLI::Range(2, 1000));
  command
      .add_option("--run-seconds", options.run_seconds,
                  "Length of one timed run (default 0.05; 0.01 with --quick)")
      ->check(CLI::Range(0.001, 60.0));
  command
      .add_option("--alive", options.alive,
                  "Units alive at once for the memory figures (default 1000 10000)")
      ->check(CLI::Range(1, 100000))
      ->delimiter(',');
  command
      .add_option("--working-set", options.working_sets,
                  "Bytes each side touches between switches, for the indirect cost "
                  "(default 16k 256k 1m 4m)")
      ->transform(CLI::AsSizeValue(false))
      ->delimiter(',');
  command
      .add_option("--only", options.only,
                  "Measure only these parts (default all): fork, switch, indirect, tlb, create, "
                  "memory")
      ->check(CLI::IsMember({"fork", "switch", "indirect", "tlb", "create", "memory"}))
      ->delimiter(',');
}

int Run(Options options) {
  if (options.runs == 0) options.runs = options.quick ? 3 : 5;
  if (options.run_seconds == 0) options.run_seconds = options.quick ? 0.01 : 0.05;
  if (options.alive.empty()) {
    options.alive = options.quick ? std::vector<int>{100, 1000} : std::vector<int>{1000, 10000};
  }
  std::sort(options.alive.begin(), options.alive.end());
  if (options.working_sets.empty()) {
    options.working_sets = options.quick
                               ? std::vector<std::size_t>{64 << 10, 1 << 20}
                               : std::vector<std::size_t>{16 << 10, 256 << 10, 1 << 20, 4 << 20};
  }
  auto wanted = [&](const std::string& part) {
    return options.only.empty() ||
           std::find(options.only.begin(), options.only.end(), part) != options.only.end();
  };
  // Check the output path before minutes of measuring, not after.
  std::ofstream json_file;
  if (!options.json_path.empty()) {
    json_file.open(options.json_path);
    if (!json_file) {
      std::cerr << "switchcost: cannot write " << options.json_path << "\n";
      return 1;
    }
  }

  const Budget budget{options.run_seconds, options.runs};
  const Machine machine = DescribeMachine();
  std::vector<Figure> figures;
  auto step = [&](const char* what, const std::function<std::vector<Figure>()>& measure) {
    std::cerr << "switchcost: " << what << "..." << std::endl;
    for (Figure& figure : measure()) figures.push_back(std::move(figure));
  };
  try {
    // Fork and copy-on-write first of all: each figure is taken in a helper process that grows
    // itself, forked from this one while it is smallest.
    if (wanted("fork")) {
      step("fork and copy-on-write", [&] { return MeasureFork(budget, options.quick); });
    }
    // First, while this process is small: fork copies its page tables, so a process grown by
    // the other measurements would make fork look dearer.
    if (wanted("create")) {
      step("creation", [&] {
        std::vector<Figure> created = MeasureUserCreation(budget);
        for (Figure& figure : MeasureOsCreation(budget)) created.push_back(std::move(figure));
        return created;
      });
    }
    if (wanted("switch")) {
      step("user-space switches and baselines", [&] { return MeasureUserSwitches(budget); });
      step("process and thread switches", [&] { return MeasureOsSwitches(budget); });
    }
    if (wanted("indirect")) {
      step("switches with a working set",
           [&] { return MeasureOsIndirect(budget, options.working_sets); });
    }
    if (wanted("tlb")) {
      // Pages touched a side between switches: within the L1 dTLB, past it, near and past the L2.
      const std::vector<int> pages =
          options.quick ? std::vector<int>{64, 1024} : std::vector<int>{16, 64, 256, 1024, 4096};
      step("switches with pages touched (TLB reach)",
           [&] { return MeasureTlbReach(budget, pages, machine.address_space); });
    }
    if (wanted("switch") || wanted("create") || wanted("memory")) {
      // Programs of their own: what they measure is filtered to the parts asked for.
      step("goroutines, asyncio tasks, greenlets and Python threads", [&] {
        std::vector<Figure> peers = MeasurePeerUnits(options);
        std::erase_if(peers, [&](const Figure& figure) { return !wanted(figure.operation); });
        return peers;
      });
    }
    if (wanted("memory")) {
      step("memory per unit", [&] {
        std::vector<Figure> memory = MeasureUserMemory(options.alive, options.runs);
        for (Figure& figure : MeasureOsMemory(options.alive, options.runs)) {
          memory.push_back(std::move(figure));
        }
        return memory;
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "switchcost: " << e.what() << "\n";
    return 1;
  }

  PrintTable(machine, figures, options, std::cout);
  // The study's table, last.
  const Study study = BuildStudy(
      figures,
      {.known = true, .pcid = machine.address_space.pcid, .pti = machine.address_space.pti});
  PrintStudy(study, std::cout);
  if (json_file.is_open()) {
    nlohmann::json json = ToJson(machine, figures);
    json["study"] = StudyJson(study);
    json_file << json.dump(2) << "\n";
    if (!json_file.flush()) {
      std::cerr << "switchcost: writing " << options.json_path << " failed\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace switchyard::switchcost
