// `switchyard load` and `switchyard load merge` (load_command.h): the flags and their units, the
// checks a bad command line fails at once, and the running: one load with the progress line and
// the live endpoint (live.h), the sweep to the knee (sweep.h), or a merge of result files; the
// result is printed and written by result.h.
#include "loadgen/load_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <future>
#include <iostream>
#include <random>

#include "loadgen/ledger.h"
#include "loadgen/live.h"
#include "loadgen/merge.h"
#include "loadgen/result.h"
#include "loadgen/run.h"
#include "loadgen/sweep.h"

namespace switchyard::loadgen {
namespace {

// Parses a number followed by one of `units` (name, multiplier); a bare number takes
// `default_multiplier`.
double ParseWithUnit(const std::string& text,
                     const std::vector<std::pair<std::string, double>>& units,
                     double default_multiplier, const std::string& what) {
  std::size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument(what + ": '" + text + "' is not a number");
  }
  const std::string unit = text.substr(used);
  if (!std::isfinite(number) || number < 0) {
    throw std::invalid_argument(what + ": '" + text + "' must be a non-negative number");
  }
  if (unit.empty()) return number * default_multiplier;
  for (const auto& [name, multiplier] : units) {
    if (unit == name) return number * multiplier;
  }
  std::string known;
  for (const auto& [name, multiplier] : units) known += (known.empty() ? "" : ", ") + name;
  throw std::invalid_argument(what + ": unknown unit in '" + text + "' (" + known + ")");
}

const std::vector<std::pair<std::string, double>> kTimeUnits = {
    {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};

// Runs one load in a worker thread while this thread keeps the progress line and metrics live.
pb::LoadResult RunWithProgress(const LoadConfig& config, const LoadCommandOptions& options,
                               Live& live) {
  LiveStats stats;
  auto running = std::async(std::launch::async, [&] {
    pb::LoadResult result = RunLoad(config, &stats);
    result.mutable_spec()->set_protocol(config.protocol);
    return result;
  });
  const auto start = std::chrono::steady_clock::now();
  while (running.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
    live.Update(stats,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                !options.quiet);
  }
  if (!options.quiet && isatty(STDERR_FILENO)) std::cerr << "\n";
  return running.get();  // rethrows what RunLoad threw
}

void OnSignal(int) { g_stop_requested.store(true); }

std::uint64_t RandomSeed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) | device();
}

// The worker flags: the run's seed (given, or this process's own), its start and its id.
void SetUpWorker(LoadCommandOptions& options) {
  LoadConfig& config = options.config;
  if (config.worker_index >= config.workers) {
    throw std::invalid_argument("--worker-index " + std::to_string(config.worker_index) +
                                " is not below --workers " + std::to_string(config.workers) +
                                " (it counts from 0)");
  }
  if (config.workers > 1 && options.start_at.empty()) {
    throw std::invalid_argument(
        "--workers needs --start-at: the workers of one run begin at one instant, or their "
        "measured parts would not cover the same time");
  }
  if (config.workers > 1 && options.sweep) {
    throw std::invalid_argument("--sweep runs in one process; drop --workers");
  }
  if (options.seed_text.empty()) {
    config.seed = RandomSeed();
  } else {
    std::size_t used = 0;
    try {
      config.seed = std::stoull(options.seed_text, &used, 0);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != options.seed_text.size() || options.seed_text[0] == '-') {
      throw std::invalid_argument("--seed: '" + options.seed_text + "' is not a 64-bit number");
    }
  }
  if (!options.start_at.empty()) {
    if (options.sweep) throw std::invalid_argument("--start-at does not go with --sweep");
    config.start_at_unix_ns = ParseStartAt(options.start_at);
    const double ahead = static_cast<double>(config.start_at_unix_ns - UnixNowNs()) / 1e9;
    if (ahead > 24 * 3600) {
      throw std::invalid_argument("--start-at " + options.start_at +
                                  " is more than a day away: is its time zone right?");
    }
    StartNs(config);  // a worker that is late already fails before it connects
    if (!options.quiet) {
      std::fprintf(stderr, "switchyard load: worker %u of %u waits %.1f s for --start-at %s\n",
                   config.worker_index, config.workers, ahead,
                   FormatUtc(config.start_at_unix_ns).c_str());
    }
  }
  if (config.run_id.empty()) {
    // Every worker of a run is given the same --start-at, so it names the run; a run without one
    // is a process of its own.
    if (config.start_at_unix_ns != 0) {
      config.run_id = FormatUtc(config.start_at_unix_ns);
    } else {
      char id[24];
      std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(RandomSeed()));
      config.run_id = id;
    }
  }
}

int RunSweep(LoadCommandOptions& options) {
  SweepPlan plan;
  ParseSlo(options.slo, &plan.percentile, &plan.slo_seconds);
  plan.steps = options.sweep_steps;
  plan.runs_per_step = options.sweep_runs;
  plan.retries = options.sweep_retries;
  plan.precision = options.sweep_precision / 100;

  // First the closed-loop peak, to know how far the rates should go: the best of
  // --sweep-peak-runs, since a moment's slowdown of the machine only ever lowers a run's figure.
  LoadConfig peak_config = options.config;
  peak_config.rate = 0;
  std::cerr << "switchyard load: sweep: measuring the closed-loop peak first\n";
  Live peak_live(-1, 0);
  pb::LoadResult peak;
  std::vector<double> peaks;
  for (unsigned i = 0; i < std::max(1u, options.sweep_peak_runs) && !g_stop_requested; ++i) {
    pb::LoadResult run = RunWithProgress(peak_config, options, peak_live);
    peaks.push_back(run.throughput());
    if (i == 0 || run.throughput() > peak.throughput()) peak = std::move(run);
  }
  std::string all;
  for (const double figure : peaks)
    all += (all.empty() ? "" : ", ") + std::to_string(std::llround(figure));
  std::printf("closed-loop peak: %.1f/s%s%s\n", peak.throughput(),
              peaks.size() > 1 ? (" (best of " + all + ")").c_str() : "",
              peak.client_limited() ? " (CLIENT-LIMITED: the knee may lie beyond it)" : "");
  std::printf("%12s %12s %9s %9s %9s %9s %9s  %s\n", "target/s", "achieved/s", "p50", "p90", "p99",
              "p99.9", "max", "SLO (this run)");
  std::fflush(stdout);

  Live live(options.metrics_port, 0, options.metrics_bind);
  const auto run_at = [&](double rate) {
    LoadConfig config = options.config;
    config.rate = rate;
    live.SetTarget(rate);
    return RunWithProgress(config, options, live);
  };
  const auto print_run = [](const pb::LoadResult& run, const std::string& verdict) {
    std::printf(
        "%12.0f %12.0f %9s %9s %9s %9s %9s  %s\n", run.target_rate(), run.throughput(),
        FormatSeconds(run.latency().p50()).c_str(), FormatSeconds(run.latency().p90()).c_str(),
        FormatSeconds(run.latency().p99()).c_str(), FormatSeconds(run.latency().p999()).c_str(),
        FormatSeconds(run.latency().max()).c_str(),
        verdict == "client-limited"
            ? ("CLIENT-LIMITED, run again: " + run.client_limited_reason()).c_str()
            : verdict.c_str());
    std::fflush(stdout);
  };
  pb::SweepResult sweep =
      Sweep(plan, peak.throughput(), run_at, print_run, [] { return g_stop_requested.load(); });
  for (const double figure : peaks) sweep.add_peak_runs(figure);
  sweep.set_slo(options.slo);
  sweep.set_slo_percentile(plan.percentile);
  sweep.set_slo_seconds(plan.slo_seconds);

  if (plan.runs_per_step > 1) {
    std::printf("decisions (the majority of each rate's runs decides):\n");
    for (const auto& decision : sweep.decisions()) {
      std::string figures;
      for (const double seconds : decision.observed_seconds()) {
        figures += (figures.empty() ? "" : " ") + FormatSeconds(seconds);
      }
      std::printf("%12.0f  %-14s p%g of its runs: %s%s\n", decision.rate(),
                  decision.verdict().c_str(), plan.percentile, figures.c_str(),
                  decision.client_limited_runs() > 0
                      ? (" (" + std::to_string(decision.client_limited_runs()) +
                         " client-limited, not counted)")
                            .c_str()
                      : "");
    }
  }
  std::printf("highest rate meeting p%g <= %s: %.0f/s", plan.percentile,
              FormatSeconds(plan.slo_seconds).c_str(), sweep.highest_rate_meeting_slo());
  if (sweep.lowest_rate_missing_slo() > 0) {
    std::printf(" (missed at %.0f/s)", sweep.lowest_rate_missing_slo());
  }
  std::printf("\n");
  if (sweep.knee_is_lower_bound()) std::printf("%s\n", sweep.knee_note().c_str());
  if (!options.json_file.empty()) WriteJsonFile(options.json_file, sweep);
  return 0;
}

int RunMerge(LoadCommandOptions& options) {
  std::vector<pb::LoadResult> results;
  for (const std::string& path : options.merge_files) results.push_back(ReadResultFile(path));
  const pb::LoadResult merged = MergeResults(results, options.merge_files);
  PrintResult(std::cout, merged);
  if (!options.json_file.empty()) WriteJsonFile(options.json_file, merged);
  return 0;
}

}  // namespace

double ParseDurationSeconds(const std::string& text) {
  return ParseWithUnit(text, kTimeUnits, 1, "duration");
}

double ParseRate(const std::string& text) {
  return ParseWithUnit(text, {{"k", 1e3}, {"m", 1e6}}, 1, "--rate");
}

void ParseSlo(const std::string& text, double* percentile, double* seconds) {
  const std::size_t colon = text.find(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("--slo: '" + text + "' should be PERCENTILE:LATENCY, like 99:1ms");
  }
  *percentile = ParseWithUnit(text.substr(0, colon), {}, 1, "--slo percentile");
  if (*percentile <= 0 || *percentile > 100) {
    throw std::invalid_argument("--slo: the percentile must be in (0, 100]");
  }
  *seconds = ParseWithUnit(text.substr(colon + 1), kTimeUnits, 1, "--slo latency");
}

std::int64_t ParseStartAt(const std::string& text) {
  const std::invalid_argument bad("--start-at: '" + text +
                                  "' is not a time: give RFC 3339 with its zone, like "
                                  "2026-12-07T12:00:00Z, or Unix seconds, like @1796644800");
  if (!text.empty() && text[0] == '@') {
    return std::llround(ParseWithUnit(text.substr(1), {}, 1, "--start-at") * 1e9);
  }
  std::tm fields{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &fields);
  if (rest == nullptr) throw bad;
  std::int64_t nanos = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits++ < 9) nanos = nanos * 10 + (*rest - '0');
    }
    if (digits == 0) throw bad;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  std::int64_t offset_seconds = 0;
  if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    // A zone is required: a time without one means different instants on different machines.
    int hours = 0, minutes = 0, used = 0;
    if (std::sscanf(rest + 1, "%2d:%2d%n", &hours, &minutes, &used) != 2 || used != 5) throw bad;
    offset_seconds = (*rest == '-' ? -1 : 1) * (hours * 3600 + minutes * 60);
    rest += 6;
  } else {
    throw bad;
  }
  if (*rest != '\0') throw bad;
  return (static_cast<std::int64_t>(timegm(&fields)) - offset_seconds) * 1'000'000'000 + nanos;
}

CLI::App* AddLoadCommand(CLI::App& app, LoadCommandOptions& options) {
  CLI::App* load = app.add_subcommand(
      "load",
      "Drive a Redis-protocol server, or the grpc model with --protocol grpc: closed loop "
      "(--pipeline requests in flight per connection) or open loop (--rate, latency from each "
      "request's intended send time, as wrk2).\n"
      "Prints a table on stdout, a progress line on stderr; --json FILE writes the full result.");
  LoadConfig& config = options.config;
  load->add_option("--protocol", config.protocol,
                   "resp, or grpc: each request a kv.proto call (get/set/echo/incr; ping is an "
                   "empty Echo; sy.* is Work), each connection a channel of its own")
      ->capture_default_str()
      ->check(CLI::IsMember({"resp", "grpc"}));
  load->add_option("--host", config.host, "Server host")->capture_default_str();
  load->add_option("--port", config.port, "Server port")->capture_default_str();
  load->add_option("-c,--connections", config.connections, "Connections in total")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1'000'000u));
  load->add_option("-t,--threads", config.threads, "Threads, each with its own event loop")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  load->add_option("-P,--pipeline", config.pipeline,
                   "Closed loop: requests each connection keeps in flight")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1'000'000u));
  load->add_option("-R,--rate", options.rate_text,
                   "Open loop: requests per second in total (50000, 50k); none = closed loop");
  load->add_option("--arrival", options.arrival, "Open-loop arrivals")
      ->capture_default_str()
      ->check(CLI::IsMember({"uniform", "poisson"}));
  load->add_option("-d,--duration", options.duration, "Measured time (500ms, 10s, 2m)")
      ->capture_default_str();
  load->add_option("--warmup", options.warmup, "Time before measuring (0 for none)")
      ->capture_default_str();
  load->add_option("-n,--requests", config.requests,
                   "Stop after this many requests in total, warm-up included (instead of "
                   "--duration)");
  load->add_option("--drain", options.drain,
                   "Once sending has stopped, how long to wait for the replies owed; those "
                   "still missing count as failed")
      ->capture_default_str();
  load->add_option("--mix", config.mix,
                   "Command mix, command:weight: get, set, echo, incr, incrby (INCRBY 1 to 10), "
                   "ping; N keys a request mget|mset:N[:weight] (N up to 1000); simulated work "
                   "sy.cpu|sy.wait|sy.block:MICROSECONDS[:weight]")
      ->capture_default_str();
  load->add_option("--keys", config.keys, "Key space size")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  load->add_option("--key-dist", config.key_dist, "Key distribution: uniform or zipfian[:theta]")
      ->capture_default_str();
  load->add_option("--value-size", config.value_size,
                   "SET, MSET and ECHO value size: fixed (64, 4k) or a uniform range (16-1k)")
      ->capture_default_str();
  load->add_option("--json", options.json_file, "Write the full result as protobuf JSON");
  load->add_option(
          "--metrics-port", options.metrics_port,
          "Serve live Prometheus metrics on 127.0.0.1:PORT during the run (0: a free port)")
      ->check(CLI::Range(0, 65535));
  load->add_flag("--sweep", options.sweep,
                 "Measure the closed-loop peak, then raise the open-loop rate in --sweep-steps "
                 "steps up to it until --slo is missed; report each step and the knee");
  load->add_option("--slo", options.slo, "Sweep objective, PERCENTILE:LATENCY")
      ->capture_default_str();
  load->add_option("--sweep-steps", options.sweep_steps,
                   "Rate steps up to the peak; the first that misses is bisected against the "
                   "last that met")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  load->add_option("--sweep-peak-runs", options.sweep_peak_runs,
                   "Closed-loop runs that measure the peak first; the best is the peak")
      ->capture_default_str()
      ->check(CLI::Range(1u, 99u));
  load->add_option("--sweep-runs", options.sweep_runs,
                   "Runs of each step that decides the knee (a miss, the last rate that met, "
                   "each bisection step); the majority decides")
      ->capture_default_str()
      ->check(CLI::Range(1u, 99u));
  load->add_option(
          "--sweep-retries", options.sweep_retries,
          "Extra runs of a step in which the load generator was the limit; a step still "
          "limited after them ends the sweep, the knee then \"at least\" the last rate met")
      ->capture_default_str()
      ->check(CLI::Range(0u, 20u));
  load->add_option("--sweep-precision", options.sweep_precision,
                   "Bisect until the knee is known within this percentage of the peak")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 100.0));
  load->add_option("--connect-timeout", options.connect_timeout,
                   "How long each connection may take to be accepted before the run gives up")
      ->capture_default_str();
  load->add_option("--spin", options.spin,
                   "Open loop: wake this long before each request is due and spin to the exact "
                   "time, and poll rather than sleep while a reply is owed (at most a quarter "
                   "of the time), so the client's own wake-up delay is not charged to the server "
                   "as latency (costs about rate x spin of CPU, not counted as client load). "
                   "auto learns it from how late this machine's sleeps end; 0 sleeps until each "
                   "request is due and each reply arrives")
      ->capture_default_str();
  load->add_flag("--busy-poll", config.busy_poll,
                 "Spin instead of sleeping between events: timers and replies are seen at once "
                 "(no wake-up latency), but each thread uses a whole CPU");
  load->add_option("--hold-idle", options.hold_idle,
                   "--protocol grpc: after the run, keep every connection open and idle this "
                   "long (or until Ctrl-C), to measure what an idle gRPC connection costs");
  load->add_flag("-q,--quiet", options.quiet, "No progress line");
  load->add_option("--workers", config.workers,
                   "Load-generator processes making this run, on one machine or many: each takes "
                   "connection c of --connections when c % N is its index, with its share of "
                   "--rate and --requests; `load merge` makes their results one (needs --start-at)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100'000u));
  load->add_option("--worker-index", config.worker_index, "This process's index, from 0")
      ->capture_default_str();
  load->add_option("--start-at", options.start_at,
                   "Begin the warm-up at this instant (2026-12-07T12:00:00Z, or @UNIX-SECONDS), "
                   "the same for every worker; a worker not ready by then fails");
  load->add_option("--run-id", config.run_id,
                   "What ties the workers' results together for `load merge` (default: the "
                   "--start-at instant)");
  load->add_option(
      "--seed", options.seed_text,
      "Seed of the commands, keys, values and arrivals, recorded in the result (default: "
      "a random one, each worker its own)");
  load->add_option("--metrics-bind", options.metrics_bind,
                   "Address of the --metrics-port endpoint: loopback by default; another only on "
                   "a network you trust (no authentication)")
      ->capture_default_str();

  CLI::App* merge = load->add_subcommand(
      "merge", "Merge result files from several load-generator processes or machines, exactly");
  merge->add_option("files", options.merge_files, "Result files written with --json")
      ->required()
      ->check(CLI::ExistingFile);
  merge->add_option("--json", options.json_file, "Write the merged result as protobuf JSON");
  return load;
}

int RunLoadCommand(CLI::App& load, LoadCommandOptions& options) {
  try {
    if (load.got_subcommand("merge")) return RunMerge(options);
    LoadConfig& config = options.config;
    config.rate = options.rate_text.empty() ? 0 : ParseRate(options.rate_text);
    if (!options.rate_text.empty() && config.rate <= 0) {
      throw std::invalid_argument("--rate must be above 0 (leave it out for a closed loop)");
    }
    config.arrival =
        options.arrival == "poisson" ? Schedule::Arrival::kPoisson : Schedule::Arrival::kUniform;
    config.duration_seconds = ParseDurationSeconds(options.duration);
    config.warmup_seconds = ParseDurationSeconds(options.warmup);
    config.drain_seconds = ParseDurationSeconds(options.drain);
    config.connect_timeout_seconds = ParseDurationSeconds(options.connect_timeout);
    if (config.connect_timeout_seconds < 0.001) {
      throw std::invalid_argument("--connect-timeout must be at least 1ms");
    }
    config.spin_seconds = options.spin == "auto" ? -1 : ParseDurationSeconds(options.spin);
    if (config.spin_seconds > 0.1) {
      throw std::invalid_argument("--spin: at most 100ms (it is a window before each send)");
    }
    if (!options.hold_idle.empty()) {
      // RESP connections are plain sockets; compare holds those itself (compare/servers.py).
      if (config.protocol != "grpc")
        throw std::invalid_argument("--hold-idle needs --protocol grpc");
      if (options.sweep) throw std::invalid_argument("--hold-idle does not go with --sweep");
      config.hold_idle_seconds = ParseDurationSeconds(options.hold_idle);
    }
    if (config.requests == 0 && config.duration_seconds <= 0) {
      throw std::invalid_argument("--duration must be above 0");
    }
    if (options.sweep && config.requests != 0) {
      throw std::invalid_argument("--sweep runs each step for --duration; drop --requests");
    }
    // Validate the workload before connecting, so a typo fails at once.
    MakeWorkload(config);
    SetUpWorker(options);

    // Ctrl-C: stop sending, collect the replies owed, report what was measured.
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGPIPE, SIG_IGN);
    if (options.sweep) return RunSweep(options);
    Live live(options.metrics_port, OwnRate(config), options.metrics_bind, config.worker_index);
    const pb::LoadResult result = RunWithProgress(config, options, live);
    PrintResult(std::cout, result);
    if (!options.json_file.empty()) WriteJsonFile(options.json_file, result);
    return 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << "switchyard load: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "switchyard load: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace switchyard::loadgen
