// `switchyard switchcost`: what one switch, one creation and one unit of each kind cost on this
// machine, measured, with a table for people and JSON for programs.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <string>
#include <vector>

namespace switchyard::switchcost {

struct Options {
  bool quick = false;                     // small counts and short runs, for CI
  std::string json_path;                  // also write the figures here
  int runs = 0;                           // repeated runs per figure (0: 5, or 3 with --quick)
  double run_seconds = 0;                 // length of one timed run (0: 0.05 s, 0.01 with --quick)
  std::vector<int> alive;                 // units alive at once for memory (default 1000 10000)
  std::vector<std::size_t> working_sets;  // bytes touched between switches, for indirect cost
  std::vector<std::string> only;          // parts: fork, switch, indirect, create, memory
};

void AddFlags(CLI::App& command, Options& options);

// Measures everything, prints the table to stdout, writes --json if asked. Returns the exit code.
int Run(Options options);

}  // namespace switchyard::switchcost
