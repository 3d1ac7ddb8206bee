#include "loadgen/load_command.h"

#include <google/protobuf/util/json_util.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include "loadgen/grpc_load.h"
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

// "45.2us", "1.23ms", "1.50s": three significant digits, the histogram's precision.
std::string FormatSeconds(double seconds) {
  char text[32];
  if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.3gus", seconds * 1e6);
  } else if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.3gms", seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.3gs", seconds);
  }
  return text;
}

void PrintLatencyRow(std::ostream& out, const char* name, const pb::Latency& latency) {
  char line[256];
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %9s %9s %9s %9s\n", name,
                FormatSeconds(latency.p50()).c_str(), FormatSeconds(latency.p90()).c_str(),
                FormatSeconds(latency.p99()).c_str(), FormatSeconds(latency.p999()).c_str(),
                FormatSeconds(latency.p9999()).c_str(), FormatSeconds(latency.max()).c_str(),
                FormatSeconds(latency.mean()).c_str());
  out << line;
}

void PrintResult(std::ostream& out, const pb::LoadResult& result) {
  const pb::LoadSpec& spec = result.spec();
  char line[512];
  if (result.processes() > 1) {
    std::snprintf(line, sizeof line, "merged from %u load-generator processes\n",
                  result.processes());
    out << line;
  }
  std::snprintf(line, sizeof line, "%s:%u%s  %u connections on %u thread%s  %s  mix %s\n",
                spec.host().c_str(), spec.port(), spec.protocol() == "grpc" ? " (gRPC)" : "",
                spec.connections(), spec.threads(), spec.threads() == 1 ? "" : "s",
                result.target_rate() > 0
                    ? ("open loop at " + std::to_string(std::llround(result.target_rate())) +
                       "/s (" + spec.arrival() + ")")
                          .c_str()
                    : ("closed loop, pipeline " + std::to_string(spec.pipeline())).c_str(),
                spec.mix().c_str());
  out << line;
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %9s %9s %9s %9s\n", "latency", "p50", "p90",
                "p99", "p99.9", "p99.99", "max", "mean");
  out << line;
  PrintLatencyRow(out, result.target_rate() > 0 ? "corrected" : "measured", result.latency());
  if (result.target_rate() > 0) {
    PrintLatencyRow(out, "uncorrected", result.latency_uncorrected());
    PrintLatencyRow(out, "schedule lag", result.schedule_lag());
    if (result.histogram_reply_pickup().total() > 0) {
      PrintLatencyRow(out, "reply pickup", result.reply_pickup());
    }
  }
  std::snprintf(line, sizeof line,
                "throughput %.1f/s over %.2f s: %llu requests, %llu errors, %llu failed\n",
                result.throughput(), result.duration_seconds(),
                static_cast<unsigned long long>(result.requests()),
                static_cast<unsigned long long>(result.errors()),
                static_cast<unsigned long long>(result.failed()));
  out << line;
  if (result.target_rate() > 0) {
    std::snprintf(line, sizeof line, "target %.1f/s, sent %.1f/s\n", result.target_rate(),
                  result.sent_rate());
    out << line;
  }
  const double per_cpu_second =
      result.client_cpu_seconds() > 0 ? result.requests() / result.client_cpu_seconds() : 0;
  std::snprintf(line, sizeof line, "client CPU %.3f s (%.0f requests per client CPU-second)",
                result.client_cpu_seconds(), per_cpu_second);
  out << line;
  if (result.client_spin_seconds() > 0) {
    std::snprintf(line, sizeof line, ", of which %.3f s spinning to send and read on time",
                  result.client_spin_seconds());
    out << line;
  }
  out << "\n";
  if (result.machine_steal_fraction() > 0) {
    std::snprintf(line, sizeof line,
                  "machine steal %.2f%%: the hypervisor gave that share of this machine's CPU "
                  "time to others, in stalls a tail can include\n",
                  result.machine_steal_fraction() * 100);
    out << line;
  }
  if (result.connections_lost() > 0) {
    out << "connections lost: " << result.connections_lost() << " (first: " << result.first_loss()
        << ")\n";
  }
  if (result.delayed_ack_stall()) {
    out << "DELAYED-ACK STALL: " << result.delayed_ack_stall_message() << "\n";
  }
  if (result.client_limited()) {
    out << "CLIENT-LIMITED: the load generator, not the server, was the limit ("
        << result.client_limited_reason() << "); these are not the server's figures\n";
  }
}

// Live figures: the progress line on stderr and, when asked, a Prometheus endpoint.
class Live {
 public:
  // metrics_port < 0: no endpoint.
  Live(int metrics_port, double target_rate) : target_rate_(target_rate) {
    if (metrics_port < 0) return;
    registry_ = std::make_shared<prometheus::Registry>();
    auto& requests = prometheus::BuildCounter()
                         .Name("switchyard_loadgen_requests_total")
                         .Help(
                             "Requests by outcome, measured part of the run: ok, error (an "
                             "error reply), failed (never answered)")
                         .Register(*registry_);
    ok_ = &requests.Add({{"outcome", "ok"}});
    error_ = &requests.Add({{"outcome", "error"}});
    failed_ = &requests.Add({{"outcome", "failed"}});
    latency_ = &prometheus::BuildHistogram()
                    .Name("switchyard_loadgen_latency_seconds")
                    .Help(
                        "Latency from each request's intended send time (coordinated-omission "
                        "corrected in open loop)")
                    .Register(*registry_)
                    .Add({}, Bounds());
    auto gauge = [&](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
    };
    target_ =
        gauge("switchyard_loadgen_target_rate", "Requests per second asked for (0: closed loop)");
    achieved_ = gauge("switchyard_loadgen_achieved_rate",
                      "Requests answered per second over the last second");
    lag_ = gauge("switchyard_loadgen_schedule_lag_seconds",
                 "Largest lag of a send behind its schedule over the last second");
    target_->Set(target_rate);
    exposer_ = std::make_unique<prometheus::Exposer>("127.0.0.1:" + std::to_string(metrics_port));
    exposer_->RegisterCollectable(registry_);
    std::cerr << "switchyard load: metrics on http://127.0.0.1:" << exposer_->GetListeningPorts()[0]
              << "/metrics\n";
  }

  void SetTarget(double rate) {
    target_rate_ = rate;
    if (target_ != nullptr) target_->Set(rate);
  }

  // Once a second: fold what the workers published into the endpoint and print the progress line.
  void Update(LiveStats& stats, double elapsed_seconds, bool print) {
    Histogram interval;
    std::uint64_t ok, errors, failed;
    std::int64_t lag_ns;
    bool measuring;
    {
      std::lock_guard lock(stats.mutex);
      interval.Merge(stats.latency_interval);
      stats.latency_interval.Reset();
      ok = stats.ok;
      errors = stats.errors;
      failed = stats.failed;
      lag_ns = stats.max_lag_interval_ns;
      stats.max_lag_interval_ns = 0;
      measuring = stats.measuring;
    }
    const std::uint64_t answered = ok + errors;
    const double seconds = elapsed_seconds - last_elapsed_;
    const double rate = seconds > 0 ? (answered - last_answered_) / seconds : 0;
    if (registry_) {
      ok_->Increment(static_cast<double>(ok - last_ok_));
      error_->Increment(static_cast<double>(errors - last_errors_));
      failed_->Increment(static_cast<double>(failed - last_failed_));
      std::vector<double> increments(Bounds().size() + 1, 0);
      for (const auto& [value, count] : interval.Buckets()) {
        const double value_seconds = static_cast<double>(value) / 1e9;
        const auto bound = std::lower_bound(Bounds().begin(), Bounds().end(), value_seconds);
        increments[bound - Bounds().begin()] += static_cast<double>(count);
      }
      latency_->ObserveMultiple(increments, static_cast<double>(interval.sum()) / 1e9);
      achieved_->Set(rate);
      lag_->Set(static_cast<double>(lag_ns) / 1e9);
    }
    if (print) {
      char line[200];
      std::snprintf(
          line, sizeof line,
          "[%5.1fs] %s %9.0f req/s%s  p99 %s  max lag %s  errors %llu  failed %llu",
          elapsed_seconds, measuring ? "measuring" : "warm-up  ", rate,
          target_rate_ > 0
              ? (" (target " + std::to_string(std::llround(target_rate_)) + ")").c_str()
              : "",
          FormatSeconds(static_cast<double>(interval.ValueAtPercentile(99)) / 1e9).c_str(),
          FormatSeconds(static_cast<double>(lag_ns) / 1e9).c_str(),
          static_cast<unsigned long long>(errors), static_cast<unsigned long long>(failed));
      // On a terminal the line rewrites itself; in a log, one line a second.
      std::cerr << line << (isatty(STDERR_FILENO) ? "\r" : "\n") << std::flush;
    }
    last_ok_ = ok;
    last_errors_ = errors;
    last_failed_ = failed;
    last_answered_ = answered;
    last_elapsed_ = elapsed_seconds;
  }

 private:
  static const std::vector<double>& Bounds() {
    static const std::vector<double> bounds = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                               2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
                                               0.5,    1,      2.5,  5,      10};
    return bounds;
  }

  double target_rate_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Counter *ok_ = nullptr, *error_ = nullptr, *failed_ = nullptr;
  prometheus::Histogram* latency_ = nullptr;
  prometheus::Gauge *target_ = nullptr, *achieved_ = nullptr, *lag_ = nullptr;
  std::uint64_t last_ok_ = 0, last_errors_ = 0, last_failed_ = 0, last_answered_ = 0;
  double last_elapsed_ = 0;
};

// Runs one load in a worker thread while this thread keeps the progress line and metrics live.
pb::LoadResult RunWithProgress(const LoadConfig& config, const LoadCommandOptions& options,
                               Live& live) {
  LiveStats stats;
  auto running = std::async(std::launch::async, [&] {
    pb::LoadResult result =
        config.protocol == "grpc" ? RunGrpcLoad(config, &stats) : RunLoad(config, &stats);
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

  Live live(options.metrics_port, 0);
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
  const pb::LoadResult merged = MergeResults(results);
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

pb::LoadResult ReadResultFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  pb::LoadResult result;
  google::protobuf::util::JsonParseOptions options;
  const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &result, options);
  if (!status.ok()) {
    throw std::runtime_error(path + " is not a load result: " + std::string(status.message()));
  }
  if (result.processes() == 0) throw std::runtime_error(path + " is not a load result");
  return result;
}

void WriteJsonFile(const std::string& path, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) throw std::runtime_error("cannot encode the result: " + status.ToString());
  std::ofstream file(path);
  file << text;
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path);
}

pb::LoadResult MergeResults(const std::vector<pb::LoadResult>& results) {
  if (results.empty()) throw std::invalid_argument("nothing to merge");
  pb::LoadResult merged;
  *merged.mutable_spec() = results[0].spec();
  Histogram latency, uncorrected, lag, pickup;
  std::string reasons;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const pb::LoadResult& result = results[i];
    if (i > 0) {
      pb::LoadSpec* spec = merged.mutable_spec();
      spec->set_connections(spec->connections() + result.spec().connections());
      spec->set_threads(spec->threads() + result.spec().threads());
      spec->set_rate(spec->rate() + result.spec().rate());
    }
    // The processes ran side by side: rates and counts add up, the span is the longest.
    merged.set_target_rate(merged.target_rate() + result.target_rate());
    merged.set_throughput(merged.throughput() + result.throughput());
    merged.set_sent_rate(merged.sent_rate() + result.sent_rate());
    merged.set_requests(merged.requests() + result.requests());
    merged.set_errors(merged.errors() + result.errors());
    merged.set_failed(merged.failed() + result.failed());
    merged.set_client_cpu_seconds(merged.client_cpu_seconds() + result.client_cpu_seconds());
    merged.set_client_spin_seconds(merged.client_spin_seconds() + result.client_spin_seconds());
    merged.set_client_run_queue_wait_seconds(merged.client_run_queue_wait_seconds() +
                                             result.client_run_queue_wait_seconds());
    merged.set_machine_steal_fraction(
        std::max(merged.machine_steal_fraction(), result.machine_steal_fraction()));
    merged.set_duration_seconds(std::max(merged.duration_seconds(), result.duration_seconds()));
    merged.set_processes(merged.processes() + result.processes());
    if (merged.connections_lost() == 0) merged.set_first_loss(result.first_loss());
    merged.set_connections_lost(merged.connections_lost() + result.connections_lost());
    if (result.client_limited()) {
      merged.set_client_limited(true);
      reasons += (reasons.empty() ? "" : "; ") + result.client_limited_reason();
    }
    latency.Merge(FromProto(result.histogram()));
    uncorrected.Merge(FromProto(result.histogram_uncorrected()));
    lag.Merge(FromProto(result.histogram_schedule_lag()));
    pickup.Merge(FromProto(result.histogram_reply_pickup()));
  }
  merged.set_client_limited_reason(reasons);
  SetHistograms(latency, uncorrected, lag, pickup, &merged);
  SetDelayedAckStall(latency, &merged);
  return merged;
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
    Workload(ParseMix(config.mix), config.keys, config.key_dist, ParseSizeRange(config.value_size));

    // Ctrl-C: stop sending, collect the replies owed, report what was measured.
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGPIPE, SIG_IGN);
    if (options.sweep) return RunSweep(options);
    Live live(options.metrics_port, config.rate);
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
