#include "switchcost/peer_units.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "switchcost/helper_process.h"

namespace switchyard::switchcost {
namespace {

struct PeerProgram {
  const char* runtime;  // for the log line
  const char* command;  // its program (and script), as a shell command line
  const char* path;     // what must exist for it to run
  const char* package;  // the Debian package of its runtime
};

// Their runtimes' Debian packages (package names, not the model list).
constexpr PeerProgram kPrograms[] = {
    {"Go", SWITCHCOST_GO_PROGRAM, SWITCHCOST_GO_PROGRAM, "golang-go"},
    {"Python", "/usr/bin/python3 " SWITCHCOST_PYTHON_PROGRAM, SWITCHCOST_PYTHON_PROGRAM,
     "python3-gevent python3-uvloop"},
};

// Runs `command`, returns what it wrote to stdout (its stderr, progress lines, passes through).
bool RunForOutput(const std::string& command, std::string* output) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return false;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe.get())) > 0;) {
    output->append(buffer, n);
  }
  const int status = pclose(pipe.release());
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

std::vector<Figure> MeasurePeerUnits(const Options& options) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // A sanitizer build tests our C++; the peers' programs are not ours to instrument, and their
  // runs only lengthen it.
  std::cerr << "switchcost: the Go and Python rows are left out in a sanitizer build\n";
  return {};
#endif
  std::ostringstream flags;
  flags << " --runs " << options.runs << " --run-seconds " << options.run_seconds << " --alive ";
  for (std::size_t i = 0; i < options.alive.size(); ++i)
    flags << (i ? "," : "") << options.alive[i];
  std::vector<Figure> figures;
  for (const PeerProgram& program : kPrograms) {
    std::string output;
    if (access(program.path, R_OK) != 0 || !RunForOutput(program.command + flags.str(), &output)) {
      std::cerr << "switchcost: the " << program.runtime << " rows are left out: " << program.path
                << " did not run (apt-get install " << program.package
                << ", then ./switchyard build)\n";
      continue;
    }
    for (const auto& row : nlohmann::json::parse(output)) {
      figures.push_back(FigureFromJson(row));
    }
  }
  return figures;
}

}  // namespace switchyard::switchcost
