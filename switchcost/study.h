// The study's table: the questions Switchyard began from (what a switch between processes,
// threads and coroutines does, what it costs in time and memory, what fork and copy-on-write
// cost), each answered with this run's own figures, and the study note's guesses checked. The
// answers are built here once; `switchyard switchcost` prints them and writes them into its
// --json, and the comparison's report renders that JSON (compare/study.py).
#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

// What the CPU and the kernel do to the TLB when page tables change (switchcost fills it from
// ReadAddressSpaceFacts, tlb_units.h).
struct AddressSpace {
  bool known = false;  // false: /proc/cpuinfo could not be read
  bool pcid = false;   // the CPU tags TLB entries by address space ("pcid" in cpuinfo's flags)
  std::string pti;     // /sys/devices/system/cpu/vulnerabilities/meltdown, e.g. "Mitigation: PTI"
};

// One figure the study quotes: the raw row it is (unit, operation, method, pinned) and its value,
// or text "-" when the run has no such row.
struct Quoted {
  std::string label;  // what it stands for in the answer: "fork, parent of 64 MiB"
  bool measured = false;
  bool flagged = false;  // outside what the kernel's design allows: not given as an answer
  Figure row;            // the raw row (valid when measured)
  std::string text;      // as printed: "8.61 µs", "59.5 KiB", or "-"
};

// One kind of unit: what its switch changes, the study note's guess about it, and its figures.
struct StudyRow {
  std::string unit;          // the raw rows' unit: process, thread, fiber, goroutine, ...
  std::string kind;          // as the table names it: "thread (1:1)"
  std::string page_tables;   // does a switch change page tables?
  std::string kernel_stack;  // does a switch change kernel stacks (through the scheduler)?
  std::string registers;     // what a switch saves and restores
  std::string guess;         // the study note's guess for its kind of unit
  std::string verdict;       // holds / incomplete / wrong, and why, in one sentence
  Quoted switch_time;        // one switch, both sides on one CPU
  Quoted create_time;        // create, run to its end, destroy
  Quoted memory;             // PSS per unit with the most units alive
};

struct Question {
  std::string id;        // switch, tlb, process-vs-thread, memory, create, fork, cow, m-n
  std::string question;  // the study's question in one line
  std::string answer;    // one or two sentences from the figures; "flagged: ..." when flagged
  bool flagged = false;
  std::vector<Quoted> figures;  // every raw row the answer quotes
};

struct Flag {
  std::string question;  // the id of the question it concerns
  std::string why;       // what the kernel's design allows and what was measured instead
};

struct Study {
  AddressSpace address_space;
  std::vector<StudyRow> rows;
  std::vector<Question> questions;
  std::vector<Flag> flags;
};

// Answers the study's questions from `figures` (any subset: absent rows read "-" or "not
// measured") and `facts`, flagging figures that fall outside what the kernel's design allows.
Study BuildStudy(const std::vector<Figure>& figures, const AddressSpace& facts);

// The short table, the questions with their answers, and the flags.
void PrintStudy(const Study& study, std::ostream& out);

// The "study" object of --json (docs/switchcost.md describes its shape).
nlohmann::json StudyJson(const Study& study);

}  // namespace switchyard::switchcost
