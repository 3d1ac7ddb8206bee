// The run's live figures while it goes on: the progress line on stderr, once a second, and, when
// asked (--metrics-port), a Prometheus endpoint with the load generator's own series.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loadgen/ledger.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace switchyard {
class MetricsEndpoint;
}  // namespace switchyard

namespace switchyard::loadgen {

class Live {
 public:
  // metrics_port < 0: no endpoint; 0: a free port, printed. Every series carries the worker index
  // (--worker-index), so that a dashboard sums the workers of a run spread over processes.
  Live(int metrics_port, double target_rate, const std::string& bind = "127.0.0.1",
       unsigned worker_index = 0);
  ~Live();

  void SetTarget(double rate);

  // Once a second: fold what the workers published into the endpoint and print the progress line.
  void Update(LiveStats& stats, double elapsed_seconds, bool print);

 private:
  static const std::vector<double>& Bounds();

  double target_rate_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  prometheus::Counter *ok_ = nullptr, *error_ = nullptr, *failed_ = nullptr;
  prometheus::Histogram* latency_ = nullptr;
  prometheus::Gauge *target_ = nullptr, *achieved_ = nullptr, *lag_ = nullptr;
  std::uint64_t last_ok_ = 0, last_errors_ = 0, last_failed_ = 0, last_answered_ = 0;
  double last_elapsed_ = 0;
};

}  // namespace switchyard::loadgen
