#include "switchcost/study.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <ostream>

namespace switchyard::switchcost {
namespace {

// A figure's value as every table writes it, by its unit of value.
std::string FormatValue(const Figure& figure) {
  if (figure.unit_of_value == "ns") return FormatNs(figure.value);
  if (figure.unit_of_value == "bytes") return FormatBytes(figure.value);
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", figure.value);
  return text;
}

// The row of `unit`/`operation`/`method`; `pinned` unset takes either (the fork and
// copy-on-write rows are not ping-pongs, so which they carry is theirs to say).
const Figure* FindRow(const std::vector<Figure>& figures, const std::string& unit,
                      const std::string& operation, const std::string& method,
                      std::optional<bool> pinned) {
  for (const Figure& figure : figures) {
    if (figure.unit == unit && figure.operation == operation && figure.method == method &&
        (!pinned || figure.pinned == *pinned)) {
      return &figure;
    }
  }
  return nullptr;
}

Quoted Quote(const std::vector<Figure>& figures, const std::string& label, const std::string& unit,
             const std::string& operation, const std::string& method, std::optional<bool> pinned) {
  Quoted quoted;
  quoted.label = label;
  quoted.text = "-";
  if (const Figure* row = FindRow(figures, unit, operation, method, pinned)) {
    quoted.measured = true;
    quoted.row = *row;
    quoted.text = FormatValue(*row);
  }
  return quoted;
}

// How an answer says a figure: its value, or that it was not measured.
std::string Say(const Quoted& quoted) { return quoted.measured ? quoted.text : "not measured"; }

bool AllDigits(const std::string& text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The method `prefix` + N with the largest N among `unit`'s memory rows ("pss@1000"), or "".
std::string MostAlive(const std::vector<Figure>& figures, const std::string& unit,
                      const std::string& prefix) {
  std::string best;
  long most = -1;
  for (const Figure& figure : figures) {
    if (figure.unit != unit || figure.operation != "memory") continue;
    if (figure.method.rfind(prefix, 0) != 0) continue;
    const std::string count = figure.method.substr(prefix.size());
    if (AllDigits(count) && std::stol(count) > most) {
      most = std::stol(count);
      best = figure.method;
    }
  }
  return best;
}

// "4KiB", "64MiB", "1GiB" in bytes; 0 when `text` is not a size.
double ParseSize(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return 0;
  const double number = std::stod(text.substr(0, digits));
  const std::string suffix = text.substr(digits);
  if (suffix == "KiB") return number * 1024;
  if (suffix == "MiB") return number * 1024 * 1024;
  if (suffix == "GiB") return number * 1024 * 1024 * 1024;
  return suffix == "B" ? number : 0;
}

// Every `unit`/`operation` row whose method is `prefix` + a size (+ `suffix`), by size.
std::vector<std::pair<double, const Figure*>> BySize(const std::vector<Figure>& figures,
                                                     const std::string& unit,
                                                     const std::string& operation,
                                                     const std::string& prefix,
                                                     const std::string& suffix = "") {
  std::vector<std::pair<double, const Figure*>> sized;
  for (const Figure& figure : figures) {
    const std::string& method = figure.method;
    if (figure.unit != unit || figure.operation != operation || method.rfind(prefix, 0) != 0 ||
        method.size() < prefix.size() + suffix.size() ||
        method.compare(method.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const double bytes =
        ParseSize(method.substr(prefix.size(), method.size() - prefix.size() - suffix.size()));
    if (bytes > 0) sized.emplace_back(bytes, &figure);
  }
  std::sort(sized.begin(), sized.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return sized;
}

Quoted QuoteRow(const Figure& row, const std::string& label) {
  Quoted quoted;
  quoted.label = label;
  quoted.measured = true;
  quoted.row = row;
  quoted.text = FormatValue(row);
  return quoted;
}

bool PtiOn(const AddressSpace& facts) { return facts.pti.rfind("Mitigation: PTI", 0) == 0; }

// One kind of unit: what its switch does, the note's kind it falls under, and its rows' methods
// (the same methods as the first table of PrintTable in switchcost.cc).
struct Unit {
  std::string unit, kind, page_tables, kernel_stack, registers, guess, verdict;
  std::string switch_method, create_method, memory_prefix;
};

std::vector<Unit> Units(const AddressSpace& facts) {
  const bool pti = PtiOn(facts);
  std::string process_verdict;
  if (!facts.known) {
    process_verdict = "not checked: whether this CPU has PCID could not be read";
  } else if (facts.pcid) {
    process_verdict =
        "incomplete: the page tables change, but with PCID the TLB keeps each recent address "
        "space's entries, tagged, so a switch need not flush it; the kernel stack changes too";
  } else {
    process_verdict =
        "holds: without PCID each page-table load flushes the TLB's non-global entries; the "
        "kernel stack changes too";
    if (pti) process_verdict += "; under PTI every kernel entry flushes it as well";
  }
  const std::string thread_verdict =
      facts.known && pti && !facts.pcid
          ? "incomplete: its page tables stay, but under PTI without PCID every kernel entry "
            "loads the kernel's page tables and flushes the TLB, so a thread switch flushes it too"
          : "holds: no page-table change; it enters the kernel, which saves every register and "
            "changes kernel stacks";
  const std::string n1 = "TLB no, state yes";
  return {
      {"process", "process", "yes", "yes", "all", "TLB yes, state yes", process_verdict, "futex",
       "fork+exit+wait", "pss@"},
      {"thread", "thread (1:1)", "no", "yes", "all", "TLB no, state yes", thread_verdict, "futex",
       "pthread_create+join", "stack-default/pss@"},
      {"fiber", "fiber (N:1, Boost.Context)", "no", "no", "callee-saved, SP", n1,
       "holds in part: no kernel and no page tables, and only the callee-saved registers and the "
       "stack pointer, since the switch is a function call",
       "boost-fiber", "boost-fiber", "stack-default/pss@"},
      // The kinds of unit switchcost measures: its own names, not the model list.
      {"coroutine", "coroutine (C++20, stackless)", "no", "no", "none (a call)", n1,
       "wrong for a stackless coroutine: no processor state beyond a call's; its state lives in "
       "a heap frame",
       "symmetric-transfer", "new-frame+run+destroy", "pss@"},
      {"goroutine", "goroutine (M:N)", "no", "no (its threads': yes)", "SP, PC, BP",
       "TLB no, state yes",
       "incomplete: a goroutine switch stays in user space and saves SP, PC and BP; the "
       "runtime's threads still switch in the kernel when they block or park",
       "chan-pingpong", "go+wg.Done", "pss@"},
      // The peers' units and methods, as their switch-cost programs name them (not the model list).
      {"asyncio-task", "asyncio task (N:1, stackless)", "no", "no", "none (a call)", n1,
       "wrong for a stackless task: the event loop calls its coroutine's frame, in Python",
       "future-pingpong/asyncio", "create_task+run/asyncio", "pss@"},
      {"greenlet", "greenlet (N:1, stack copying)", "no", "no", "callee-saved, stack copied", n1,
       "holds, with a twist: the greenlet's slice of the C stack is copied out and in",
       "greenlet.switch", "greenlet+switch", "pss@"},
      {"python-thread", "Python thread (1:1 + GIL)", "no", "yes", "all", "TLB no, state yes",
       "holds: a 1:1 thread's kernel switch, plus handing over the GIL", "lock-pingpong",
       "Thread.start+join", ""},
  };
}

Question NewQuestion(const std::string& id, const std::string& question) {
  Question q;
  q.id = id;
  q.question = question;
  return q;
}

const StudyRow* RowOf(const Study& study, const std::string& unit) {
  for (const StudyRow& row : study.rows) {
    if (row.unit == unit) return &row;
  }
  return nullptr;
}

void AnswerSwitch(Study& study) {
  Question q =
      NewQuestion("switch", "What does one switch do in each kind of unit, and what does it cost?");
  for (const StudyRow& row : study.rows) q.figures.push_back(row.switch_time);
  auto say = [&](const std::string& unit) { return Say(RowOf(study, unit)->switch_time); };
  q.answer = "A process switch (" + say("process") +
             ") changes page tables, kernel stack and every register; a thread switch (" +
             say("thread") + ") and a Python thread's (" + say("python-thread") +
             ") change the kernel stack and every register, through the kernel's scheduler, but "
             "not the page tables. In user space, without the kernel, a fiber switch (" +
             // The kinds of unit, each named for its row (not the model list).
             say("fiber") +
             ") saves the callee-saved registers and the stack pointer, a "
             "greenlet's (" +
             say("greenlet") + ") also copies its stack, a goroutine's (" + say("goroutine") +
             ") saves SP, PC and BP, and a C++20 coroutine's (" + say("coroutine") +
             ") or an asyncio task's (" + say("asyncio-task") + ") no more than a call does.";
  study.questions.push_back(std::move(q));
}

void AnswerTlb(Study& study, const std::vector<Figure>& figures) {
  const AddressSpace& facts = study.address_space;
  Question q = NewQuestion("tlb", "Does a process switch flush the TLB, as the note guessed?");
  const Quoted syscall = Quote(figures, "system call", "syscall", "switch", "getppid", true);
  if (facts.known && !facts.pcid) q.figures.push_back(syscall);  // the answers that quote it
  if (!facts.known) {
    q.answer = "Not known here: /proc/cpuinfo could not be read.";
  } else if (facts.pcid) {
    q.answer =
        "Not necessarily: this CPU has PCID, so Linux tags TLB entries with an address-space id "
        "(a few recent address spaces a CPU) and changes page tables without flushing them" +
        std::string(PtiOn(facts) ? "; under PTI each process has two ids, user and kernel." : ".");
  } else if (PtiOn(facts)) {
    q.answer =
        "Yes, and more often than the note says: this CPU has no PCID and the kernel runs PTI (" +
        facts.pti +
        "), so every entry to the kernel and every return changes page tables and flushes the "
        "TLB's non-global entries: a thread switch and even a system call (" +
        Say(syscall) + ") flush it, not only a process switch.";
  } else {
    q.answer =
        "Yes: without PCID a page-table change flushes the TLB's non-global entries, while "
        "a thread switch and a system call (" +
        Say(syscall) + ") keep them (no PTI: " + facts.pti + ").";
  }
  study.questions.push_back(std::move(q));
}

// "process X, thread Y: the process switch costs D more" with the spreads taken into account.
std::string Difference(const Quoted& process, const Quoted& thread, const std::string& what) {
  const double d = process.row.value - thread.row.value;
  const double spreads = process.row.spread + thread.row.spread;
  const std::string both = "process " + process.text + ", thread " + thread.text;
  if (std::fabs(d) <= spreads) return both + ": no difference beyond their spreads";
  if (d > 0) return both + ": " + FormatNs(d) + " more for the process, " + what;
  return both + ": the process came out " + FormatNs(-d) +
         " cheaper, which the work it does cannot explain (it does as much or more): the "
         "machine's noise";
}

void AnswerProcessVersusThread(Study& study, const std::vector<Figure>& figures) {
  Question q = NewQuestion("process-vs-thread",
                           "What does a process switch pay that a thread switch does not?");
  const Quoted process = Quote(figures, "process switch", "process", "switch", "futex", true);
  const Quoted thread = Quote(figures, "thread switch", "thread", "switch", "futex", true);
  q.figures = {process, thread};
  if (!process.measured || !thread.measured) {
    q.answer = "Not measured: the run has no futex switch of both a process and a thread.";
    study.questions.push_back(std::move(q));
    return;
  }
  q.answer = "A bare switch: " + Difference(process, thread, "the page-table change") + ".";
  // The TLB rows: each side touches N pages between switches; the largest N measured for both.
  std::optional<std::pair<Quoted, Quoted>> pages;
  std::string count;
  for (const Figure& figure : figures) {
    if (figure.unit != "process" || figure.operation != "switch" || !figure.pinned ||
        figure.method.rfind("futex+pages", 0) != 0) {
      continue;
    }
    const std::string n = figure.method.substr(std::string("futex+pages").size());
    const Figure* other = FindRow(figures, "thread", "switch", figure.method, true);
    if (!AllDigits(n) || !other || (!count.empty() && std::stol(n) <= std::stol(count))) continue;
    count = n;
    pages.emplace(QuoteRow(figure, "process switch, " + n + " pages touched"),
                  QuoteRow(*other, "thread switch, " + n + " pages touched"));
  }
  if (pages) {
    q.figures.push_back(pages->first);
    q.figures.push_back(pages->second);
    q.answer += " With " + count + " pages touched between switches: " +
                Difference(pages->first, pages->second, "the TLB refill the change brings");
    const Quoted touch =
        Quote(figures, "the pass alone", "process", "touch", "pages" + count, std::nullopt);
    if (touch.measured) {
      q.figures.push_back(touch);
      q.answer += " (the pass alone: " + touch.text + ")";
    }
    q.answer += ".";
    const std::string misses = "dTLB-load-misses/futex+pages" + count;
    const Quoted process_misses =
        Quote(figures, "dTLB load misses, process", "process", "tlb-misses", misses, std::nullopt);
    const Quoted thread_misses =
        Quote(figures, "dTLB load misses, thread", "thread", "tlb-misses", misses, std::nullopt);
    if (process_misses.measured && thread_misses.measured) {
      q.figures.push_back(process_misses);
      q.figures.push_back(thread_misses);
      q.answer += " dTLB load misses counted: process " + process_misses.text + ", thread " +
                  thread_misses.text + ".";
    } else {
      q.answer += " (No TLB miss counters on this machine.)";
    }
  } else {
    q.answer += " (The TLB rows, futex+pages<N>, are not in this run.)";
  }
  study.questions.push_back(std::move(q));
}

void AnswerMemory(Study& study, const std::vector<Figure>& figures) {
  Question q = NewQuestion("memory", "How much memory does one unit take?");
  std::vector<std::string> parts;
  for (const StudyRow& row : study.rows) {
    if (!row.memory.measured) continue;
    q.figures.push_back(row.memory);
    std::string part = row.kind + " " + row.memory.text;
    const std::string at = row.memory.row.method.substr(row.memory.row.method.find('@'));
    const std::string prefix = row.unit == "thread" ? "stack-default/" : "";
    if (row.unit == "process" || row.unit == "thread") {
      const Quoted tables = Quote(figures, row.unit + " page tables", row.unit, "memory",
                                  prefix + "pagetables" + at, false);
      const Quoted stack = Quote(figures, row.unit + " kernel stack", row.unit, "memory",
                                 prefix + "kernelstack" + at, false);
      if (tables.measured && stack.measured) {
        q.figures.push_back(tables);
        q.figures.push_back(stack);
        part += " + " + tables.text + " of page tables + " + stack.text + " of kernel stack";
      }
    }
    if (row.unit == "coroutine") {
      const Quoted frame =
          Quote(figures, "coroutine frame", "coroutine", "memory", "frame-bytes", false);
      if (frame.measured) {
        q.figures.push_back(frame);
        part += ", its frame " + frame.text;
      }
    }
    parts.push_back(part + " (" + at.substr(1) + " alive)");
  }
  if (parts.empty()) {
    q.answer = "Not measured in this run.";
  } else {
    q.answer = "PSS per unit, with the most alive at once: ";
    for (std::size_t i = 0; i < parts.size(); ++i) q.answer += (i ? "; " : "") + parts[i];
    q.answer += ". Kernel stacks and page tables are the kernel's, outside PSS.";
  }
  study.questions.push_back(std::move(q));
}

void AnswerCreate(Study& study) {
  Question q =
      NewQuestion("create", "What does creating one cost (created, run to its end, destroyed)?");
  std::vector<std::string> parts;
  for (const StudyRow& row : study.rows) {
    q.figures.push_back(row.create_time);
    parts.push_back(row.kind + " " + Say(row.create_time));
  }
  for (std::size_t i = 0; i < parts.size(); ++i) q.answer += (i ? "; " : "") + parts[i];
  q.answer += ".";
  study.questions.push_back(std::move(q));
}

void AnswerFork(Study& study, const std::vector<Figure>& figures) {
  Question q = NewQuestion(
      "fork", "What does fork cost, and how does it grow with the parent's resident size?");
  const auto sized = BySize(figures, "process", "fork", "fork+exit+wait/rss-");
  for (const auto& [bytes, row] : sized) {
    q.figures.push_back(QuoteRow(*row, "fork+exit+wait, parent of " + FormatBytes(bytes)));
  }
  if (sized.empty()) {
    q.answer = "Not measured in this run (no fork+exit+wait/rss-<size> rows).";
    study.questions.push_back(std::move(q));
    return;
  }
  // The kernel copies the parent's page tables and takes a reference on each resident page, so a
  // larger parent must cost more; anything else is the machine, not fork.
  for (std::size_t i = 1; i < sized.size(); ++i) {
    if (sized[i].second->value <= sized[i - 1].second->value) {
      q.flagged = true;
      q.figures[i].flagged = q.figures[i - 1].flagged = true;
      const std::string why =
          "fork with a parent of " + FormatBytes(sized[i].first) + " resident measured " +
          FormatNs(sized[i].second->value) + ", not more than with " +
          FormatBytes(sized[i - 1].first) + " (" + FormatNs(sized[i - 1].second->value) +
          "); fork copies the parent's page tables, so the cost must rise with its size";
      study.flags.push_back({q.id, why});
      q.answer += (q.answer.empty() ? "flagged: " : "; flagged: ") + why;
    }
  }
  if (q.flagged) {
    q.answer += ". Re-run on a quieter machine.";
  } else {
    q.answer = "fork, then exit and wait, with the parent resident: ";
    for (std::size_t i = 0; i < sized.size(); ++i) {
      q.answer +=
          std::string(i ? ", " : "") + FormatBytes(sized[i].first) + " " + q.figures[i].text;
    }
    if (sized.size() > 1) {
      const double per_mib = (sized.back().second->value - sized.front().second->value) /
                             ((sized.back().first - sized.front().first) / (1024 * 1024));
      q.answer += ": it rises with the parent's size, about " + FormatNs(per_mib) +
                  " a MiB, as the kernel copies page tables and takes a reference on each page";
    }
    q.answer += ".";
  }
  // At one size, the ways to start a program: exec after fork, and the calls that copy nothing.
  std::vector<std::string> others;
  const std::pair<std::string, std::string> starts[] = {{"fork+exec+wait", "fork+exec"},
                                                        {"posix_spawn+wait", "posix_spawn"},
                                                        {"vfork+exit+wait", "vfork"}};
  for (const auto& [name, label] : starts) {
    for (const auto& [bytes, row] : BySize(figures, "process", "fork", name + "/rss-")) {
      q.figures.push_back(QuoteRow(*row, label + ", parent of " + FormatBytes(bytes)));
      others.push_back(label + " " + q.figures.back().text + " (" + FormatBytes(bytes) + ")");
    }
  }
  if (!others.empty()) {
    q.answer += " Beside it: ";
    for (std::size_t i = 0; i < others.size(); ++i) q.answer += (i ? ", " : "") + others[i];
    q.answer += "; vfork and posix_spawn share the parent's memory instead of copying its tables.";
  }
  study.questions.push_back(std::move(q));
}

// One size of copy-on-write fault checked against a minor fault and a copy of the same size.
std::string CowAt(Study& study, Question& q, const std::vector<Figure>& figures,
                  const std::string& size) {
  Quoted cow =
      Quote(figures, "copy-on-write fault, " + size, "process", "cow-fault", size, std::nullopt);
  if (!cow.measured) return "";
  const Quoted minor = Quote(figures, "minor page fault, " + size, "process", "page-fault",
                             "minor/" + size, std::nullopt);
  const Quoted copy =
      Quote(figures, "copy of " + size, "process", "copy", "memcpy/" + size, std::nullopt);
  // A write to a shared huge page may be served by splitting it and copying only the 4 KiB
  // written (Linux since 5.8 does), so its floor is a 4 KiB fault, not a 2 MiB one.
  const std::string floor_size = size == "2MiB" ? "4KiB" : size;
  const Quoted floor = Quote(figures, "minor page fault, " + floor_size, "process", "page-fault",
                             "minor/" + floor_size, std::nullopt);
  std::string why;
  // A copy-on-write fault is a page fault plus a page allocation, a copy, a PTE update and a
  // local TLB flush: never below the fault alone (×0.8 for noise), nor far above fault + copy.
  if (floor.measured && cow.row.value < 0.8 * floor.row.value) {
    why = "the " + size + " copy-on-write fault measured " + cow.text + ", below a " + floor_size +
          " minor page fault (" + floor.text + "), though it is a fault and more";
  } else if (minor.measured && copy.measured &&
             cow.row.value > 3 * (minor.row.value + copy.row.value)) {
    why = "the " + size + " copy-on-write fault measured " + cow.text +
          ", more than 3 times a minor fault (" + minor.text + ") plus a copy (" + copy.text +
          "), the work it does";
  }
  cow.flagged = !why.empty();
  q.figures.push_back(cow);
  for (const Quoted& quoted : {minor, copy}) {
    if (quoted.measured) q.figures.push_back(quoted);
  }
  if (floor_size != size && floor.measured) q.figures.push_back(floor);
  if (!why.empty()) {
    q.flagged = true;
    study.flags.push_back({q.id, why});
    return "flagged: " + why + ".";
  }
  std::string answer = "The first write to a shared " + size + " page costs " + cow.text;
  if (floor_size != size && floor.measured && minor.measured && copy.measured) {
    answer += ", between a 4 KiB minor fault (" + floor.text +
              ": the kernel may split the huge page and copy only the 4 KiB written) and a " +
              size + " fault (" + minor.text + ") plus a " + size + " copy (" + copy.text + ")";
  } else if (minor.measured && copy.measured) {
    const double fault_and_copy = minor.row.value + copy.row.value;
    if (cow.row.value <= fault_and_copy) {
      answer += ", between a minor page fault (" + minor.text + ") and that fault plus a " + size +
                " copy (" + copy.text + ")";
    } else {
      // Above fault + copy yet within the flag's bound: say by how much, not "between".
      answer += ": more than a minor page fault (" + minor.text + ") plus a " + size + " copy (" +
                copy.text + "), by " + FormatNs(cow.row.value - fault_and_copy) +
                ", what breaking the sharing adds (the shared page's lock and reference, the "
                "page-table update and the flush of its TLB entry)";
    }
  } else {
    answer += " (not checked against the kernel's bounds: a minor fault " + Say(minor) + ", a " +
              size + " copy " + Say(copy) + ")";
  }
  return answer + ".";
}

void AnswerCow(Study& study, const std::vector<Figure>& figures) {
  Question q = NewQuestion("cow", "What does copy-on-write cost, and when does sharing stop?");
  for (const std::string size : {"4KiB", "2MiB"}) {
    const std::string said = CowAt(study, q, figures, size);
    if (!said.empty()) q.answer += (q.answer.empty() ? "" : " ") + said;
  }
  if (q.answer.empty()) q.answer = "Not measured in this run (no cow-fault rows).";
  std::vector<Quoted> pss;
  for (const char* when :
       {"parent-pss-before", "child-pss-before", "parent-pss-after", "child-pss-after"}) {
    pss.push_back(Quote(figures, std::string("PSS, ") + when, "process", "memory",
                        std::string("cow/") + when, std::nullopt));
  }
  if (std::all_of(pss.begin(), pss.end(), [](const Quoted& p) { return p.measured; })) {
    q.figures.insert(q.figures.end(), pss.begin(), pss.end());
    q.answer += " Right after fork the parent's pages are shared (PSS: parent " + pss[0].text +
                ", child " + pss[1].text + "); after the writes, parent " + pss[2].text +
                ", child " + pss[3].text +
                ": sharing stops page by page, at the first write to each page by either side.";
  }
  study.questions.push_back(std::move(q));
}

void AnswerMToN(Study& study, const std::vector<Figure>& figures) {
  Question q = NewQuestion(
      "m-n", "Where does a switch happen in an M:N runtime, which the note's guess misses?");
  const Quoted one =
      Quote(figures, "goroutine switch, 1 CPU", "goroutine", "switch", "chan-pingpong", true);
  const Quoted two =
      Quote(figures, "goroutine switch, 2 CPUs", "goroutine", "switch", "chan-pingpong", false);
  const Quoted thread = Quote(figures, "thread switch", "thread", "switch", "futex", true);
  q.figures = {one, two, thread};
  q.answer =
      "At two levels: a goroutine hands over to another in user space, in the Go "
      "scheduler (" +
      Say(one) + " on one thread, GOMAXPROCS=1; " + Say(two) +
      " across two CPUs), while the runtime's threads are 1:1 threads the kernel switches (" +
      Say(thread) +
      ") when a goroutine blocks in a system call or a thread parks with nothing to run. "
      "The note's 'processor-state switch' describes only the second.";
  study.questions.push_back(std::move(q));
}

}  // namespace

Study BuildStudy(const std::vector<Figure>& figures, const AddressSpace& facts) {
  Study study;
  study.address_space = facts;
  for (const Unit& unit : Units(facts)) {
    StudyRow row;
    row.unit = unit.unit;
    row.kind = unit.kind;
    row.page_tables = unit.page_tables;
    row.kernel_stack = unit.kernel_stack;
    row.registers = unit.registers;
    row.guess = unit.guess;
    row.verdict = unit.verdict;
    row.switch_time = Quote(figures, unit.kind + ", one switch, 1 CPU", unit.unit, "switch",
                            unit.switch_method, true);
    row.create_time =
        Quote(figures, unit.kind + ", create", unit.unit, "create", unit.create_method, false);
    const std::string memory =
        unit.memory_prefix.empty() ? "" : MostAlive(figures, unit.unit, unit.memory_prefix);
    row.memory = Quote(figures, unit.kind + ", PSS per unit", unit.unit, "memory",
                       memory.empty() ? "-" : memory, false);
    study.rows.push_back(std::move(row));
  }
  AnswerSwitch(study);
  AnswerTlb(study, figures);
  AnswerProcessVersusThread(study, figures);
  AnswerMemory(study, figures);
  AnswerCreate(study);
  AnswerFork(study, figures);
  AnswerCow(study, figures);
  AnswerMToN(study, figures);
  return study;
}

}  // namespace switchyard::switchcost
