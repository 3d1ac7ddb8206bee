// The live figures (live.h): what the worker threads published, read once a second.
#include "loadgen/live.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include "loadgen/result.h"
#include "servers/common/metrics_exposer.h"

namespace switchyard::loadgen {

Live::Live(int metrics_port, double target_rate, const std::string& bind, unsigned worker_index)
    : target_rate_(target_rate) {
  if (metrics_port < 0) return;
  registry_ = std::make_shared<prometheus::Registry>();
  const prometheus::Labels worker = {{"worker", std::to_string(worker_index)}};
  auto& requests = prometheus::BuildCounter()
                       .Name("switchyard_loadgen_requests_total")
                       .Labels(worker)
                       .Help(
                           "Requests by outcome, measured part of the run: ok, error (an "
                           "error reply), failed (never answered)")
                       .Register(*registry_);
  ok_ = &requests.Add({{"outcome", "ok"}});
  error_ = &requests.Add({{"outcome", "error"}});
  failed_ = &requests.Add({{"outcome", "failed"}});
  latency_ = &prometheus::BuildHistogram()
                  .Name("switchyard_loadgen_latency_seconds")
                  .Labels(worker)
                  .Help(
                      "Latency from each request's intended send time (coordinated-omission "
                      "corrected in open loop)")
                  .Register(*registry_)
                  .Add({}, Bounds());
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge()
                .Name(name)
                .Labels(worker)
                .Help(help)
                .Register(*registry_)
                .Add({});
  };
  target_ =
      gauge("switchyard_loadgen_target_rate", "Requests per second asked for (0: closed loop)");
  achieved_ = gauge("switchyard_loadgen_achieved_rate",
                    "Requests answered per second over the last second");
  lag_ = gauge("switchyard_loadgen_schedule_lag_seconds",
               "Largest lag of a send behind its schedule over the last second");
  target_->Set(target_rate);
  endpoint_ = std::make_unique<MetricsEndpoint>(bind, static_cast<std::uint16_t>(metrics_port),
                                                /*threads=*/2);
  endpoint_->Register(registry_);
  std::cerr << "switchyard load: metrics on " << endpoint_->Url() << "\n";
}

Live::~Live() = default;

void Live::SetTarget(double rate) {
  target_rate_ = rate;
  if (target_ != nullptr) target_->Set(rate);
}

void Live::Update(LiveStats& stats, double elapsed_seconds, bool print) {
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
    // Latencies and gauges before the request counters: a scrape that lands between two of these
    // calls then never sees answered requests without their latencies.
    std::vector<double> increments(Bounds().size() + 1, 0);
    for (const auto& [value, count] : interval.Buckets()) {
      const double value_seconds = static_cast<double>(value) / 1e9;
      const auto bound = std::lower_bound(Bounds().begin(), Bounds().end(), value_seconds);
      increments[bound - Bounds().begin()] += static_cast<double>(count);
    }
    latency_->ObserveMultiple(increments, static_cast<double>(interval.sum()) / 1e9);
    achieved_->Set(rate);
    lag_->Set(static_cast<double>(lag_ns) / 1e9);
    ok_->Increment(static_cast<double>(ok - last_ok_));
    error_->Increment(static_cast<double>(errors - last_errors_));
    failed_->Increment(static_cast<double>(failed - last_failed_));
  }
  if (print) {
    char line[200];
    std::snprintf(line, sizeof line,
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

const std::vector<double>& Live::Bounds() {
  static const std::vector<double> bounds = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                             2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
                                             0.5,    1,      2.5,  5,      10};
  return bounds;
}

}  // namespace switchyard::loadgen
