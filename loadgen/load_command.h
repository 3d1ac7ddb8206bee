// `switchyard load` and `switchyard load merge`: the flags, their parsing, and running what the
// command line asked for (one load, the sweep to the knee, or a merge of result files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/load.h"

namespace CLI {
class App;
}

namespace switchyard::loadgen {

struct LoadCommandOptions {
  LoadConfig config;
  std::string rate_text;  // "50000", "50k"; empty = closed loop
  std::string arrival = "uniform";
  std::string duration = "10s";
  std::string warmup = "2s";
  std::string drain = "5s";
  std::string spin = "auto";
  std::string connect_timeout = "5s";
  std::string hold_idle;  // gRPC only; empty = close at once
  std::string json_file;
  int metrics_port = -1;  // -1: no endpoint; 0: a free port, printed
  bool sweep = false;
  std::string slo = "99:1ms";
  unsigned sweep_steps = 10;
  unsigned sweep_runs = 1;
  unsigned sweep_peak_runs = 1;
  unsigned sweep_retries = 2;
  double sweep_precision = 5;  // percent of the peak
  bool quiet = false;          // no progress line
  std::string start_at;        // --start-at, as given
  std::string seed_text;       // --seed; empty: a random one
  std::string metrics_bind = "127.0.0.1";
  std::vector<std::string> merge_files;
};

// Adds `load` (and its `merge` subcommand) to the app. Returns the `load` subcommand.
CLI::App* AddLoadCommand(CLI::App& app, LoadCommandOptions& options);

// Runs what the parsed command line asked for; returns the process exit code.
int RunLoadCommand(CLI::App& load, LoadCommandOptions& options);

// Parsing of the flag values that carry units, exposed for tests. Throw std::invalid_argument.
double ParseDurationSeconds(const std::string& text);  // "500ms", "10s", "2m", "1h", "250us"
double ParseRate(const std::string& text);             // "50000", "50k", "1.5m"
void ParseSlo(const std::string& text, double* percentile, double* seconds);  // "99:1ms"
// --start-at: RFC 3339 ("2026-12-07T12:00:00Z", "2026-12-07T13:00:00.5+01:00") or Unix seconds
// after '@' ("@1796644800", as `date +@%s` prints); returns ns since the Unix epoch.
std::int64_t ParseStartAt(const std::string& text);

}  // namespace switchyard::loadgen
