#include "servers/common/metrics.h"

#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <sys/resource.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "servers/common/run_queue_wait.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "dev"
#endif

namespace switchyard {
namespace {

// 1-2-5 steps from 1 µs to 10 s: the range between a cached GET and a stalled event loop.
prometheus::Histogram::BucketBoundaries DurationBuckets() {
  prometheus::Histogram::BucketBoundaries bounds;
  for (double decade = 1e-6; decade < 10; decade *= 10) {
    for (double step : {1.0, 2.0, 5.0}) bounds.push_back(decade * step);
  }
  bounds.push_back(10);
  return bounds;
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

// "Rss:  1234 kB" lines of /proc/self/smaps_rollup; PSS counts each shared page once, so it is
// what a process really costs (the store's shared mapping is not counted once per worker).
void ReadMemory(ProcessStats& stats) {
  std::ifstream smaps("/proc/self/smaps_rollup");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (smaps >> key) {
    if (key == "Rss:" || key == "Pss:") {
      smaps >> kb >> unit;
      (key == "Rss:" ? stats.rss_bytes : stats.pss_bytes) = kb * 1024;
    }
    smaps.ignore(1 << 16, '\n');
  }
}

std::uint64_t ReadThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoull(line.substr(8));
  }
  return 0;
}

prometheus::ClientMetric Value(double value, prometheus::ClientMetric::Label label = {}) {
  prometheus::ClientMetric metric;
  if (!label.name.empty()) metric.label.push_back(std::move(label));
  metric.counter.value = value;  // callers copy into .gauge for gauges
  return metric;
}

prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type,
                                std::vector<prometheus::ClientMetric> metrics) {
  if (type == prometheus::MetricType::Gauge) {
    for (auto& m : metrics) m.gauge.value = m.counter.value;
  }
  return prometheus::MetricFamily{name, help, type, std::move(metrics)};
}

// Reads the OS view of the whole server at scrape time, so serving requests costs nothing extra.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    const ProcessStats s = ReadProcessStats();
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    std::vector<prometheus::MetricFamily> out;
    out.push_back(Family("switchyard_os_context_switches_total",
                         "Context switches of every thread of the server, live or exited",
                         MetricType::Counter,
                         {Value(d(s.voluntary_switches), {"kind", "voluntary"}),
                          Value(d(s.involuntary_switches), {"kind", "involuntary"})}));
    out.push_back(Family("switchyard_cpu_seconds_total", "CPU time of the whole server",
                         MetricType::Counter,
                         {Value(s.user_cpu_seconds, {"mode", "user"}),
                          Value(s.system_cpu_seconds, {"mode", "system"})}));
    out.push_back(
        Family("switchyard_memory_bytes", "Memory of the whole server", MetricType::Gauge,
               {Value(d(s.rss_bytes), {"kind", "rss"}), Value(d(s.pss_bytes), {"kind", "pss"})}));
    out.push_back(Family("switchyard_os_threads", "OS threads alive in the server",
                         MetricType::Gauge, {Value(d(s.threads))}));
    out.push_back(Family("switchyard_os_processes", "OS processes of the server", MetricType::Gauge,
                         {Value(1)}));
    return out;
  }
};

}  // namespace

// Sums the per-thread user-switch counters at scrape time.
class UserSwitchCollector : public prometheus::Collectable {
 public:
  Metrics::UserSwitchCounter& Add() {
    std::lock_guard lock(mutex_);
    return counters_.emplace_back();  // a deque never moves its elements
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::uint64_t total = 0;
    {
      std::lock_guard lock(mutex_);
      for (const auto& counter : counters_) total += counter.count.load(std::memory_order_relaxed);
    }
    return {Family("switchyard_user_switches_total",
                   "Suspensions of fibers or coroutines (0 for OS-scheduled models)",
                   prometheus::MetricType::Counter, {Value(static_cast<double>(total))})};
  }

 private:
  mutable std::mutex mutex_;
  std::deque<Metrics::UserSwitchCounter> counters_;
};

// The units alive and how long the server's threads waited for a CPU (see run_queue_wait.h).
class TaskCollector : public prometheus::Collectable {
 public:
  explicit TaskCollector(const std::atomic<std::int64_t>& tasks_active)
      : tasks_active_(tasks_active) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const double tasks = static_cast<double>(tasks_active_.load(std::memory_order_relaxed));
    return {Family("switchyard_tasks_active",
                   "Units alive serving connections: coroutines, fibers or threads (one a "
                   "connection), pool workers or processes; gRPC calls in flight",
                   prometheus::MetricType::Gauge, {Value(tasks)}),
            Family("switchyard_run_queue_wait_seconds_total",
                   "Time the server's threads were runnable but waited for a CPU (schedstat)",
                   prometheus::MetricType::Counter, {Value(RunQueueWait::TotalSeconds())})};
  }

 private:
  const std::atomic<std::int64_t>& tasks_active_;
};

Metrics::UserSwitchCounter& Metrics::NewUserSwitchCounter() {
  return static_cast<UserSwitchCollector&>(*user_switch_collector_).Add();
}

ProcessStats ReadProcessStats() {
  ProcessStats stats;
  // getrusage(RUSAGE_SELF), not /proc/self/task/*/status: the kernel folds the switches and CPU
  // time of exited threads into it, and thread_per_conn retires a thread with every connection.
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    stats.voluntary_switches = static_cast<std::uint64_t>(usage.ru_nvcsw);
    stats.involuntary_switches = static_cast<std::uint64_t>(usage.ru_nivcsw);
    stats.user_cpu_seconds = Seconds(usage.ru_utime);
    stats.system_cpu_seconds = Seconds(usage.ru_stime);
  }
  ReadMemory(stats);
  stats.threads = ReadThreadCount();
  return stats;
}

Metrics::Metrics(const std::string& model, const std::vector<std::string>& commands)
    : registry_(std::make_shared<prometheus::Registry>()),
      process_collector_(std::make_shared<ProcessCollector>()),
      accepted_(prometheus::BuildCounter()
                    .Name("switchyard_connections_accepted_total")
                    .Help("Connections accepted")
                    .Register(*registry_)
                    .Add({})),
      rejected_(prometheus::BuildCounter()
                    .Name("switchyard_connections_rejected_total")
                    .Help("Connections refused because --max-clients were connected")
                    .Register(*registry_)
                    .Add({})),
      active_(prometheus::BuildGauge()
                  .Name("switchyard_connections_active")
                  .Help("Connections open now")
                  .Register(*registry_)
                  .Add({})),
      user_switch_collector_(std::make_shared<UserSwitchCollector>()) {
  prometheus::BuildGauge()
      .Name("switchyard_build_info")
      .Help("Which model and version this server is")
      .Register(*registry_)
      .Add({{"model", model}, {"version", SWITCHYARD_VERSION}})
      .Set(1);
  auto& requests = prometheus::BuildCounter()
                       .Name("switchyard_requests_total")
                       .Help("Requests served, by command")
                       .Register(*registry_);
  auto& durations = prometheus::BuildHistogram()
                        .Name("switchyard_request_duration_seconds")
                        .Help("Service time inside the server, from parsed request to reply")
                        .Register(*registry_);
  for (const auto& command : commands) {
    requests_.push_back(&requests.Add({{"command", command}}));
    durations_.push_back(&durations.Add({{"command", command}}, DurationBuckets()));
  }
  auto& errors = prometheus::BuildCounter()
                     .Name("switchyard_request_errors_total")
                     .Help("Requests answered with an error, by kind")
                     .Register(*registry_);
  const char* kinds[] = {"protocol", "unknown_command", "wrong_arguments", "limit", "oom"};
  static_assert(std::size(kinds) == static_cast<std::size_t>(ErrorKind::kCount));
  for (std::size_t i = 0; i < errors_.size(); ++i) errors_[i] = &errors.Add({{"kind", kinds[i]}});
}

Metrics::~Metrics() = default;

std::uint16_t Metrics::Serve(const std::string& bind, std::uint16_t port) {
  const std::string address =
      (bind.find(':') != std::string::npos ? "[" + bind + "]" : bind) + ":" + std::to_string(port);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics on " + address + ": " + e.what());
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(process_collector_);
  exposer_->RegisterCollectable(user_switch_collector_);
  task_collector_ = std::make_shared<TaskCollector>(tasks_active_);
  exposer_->RegisterCollectable(task_collector_);
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? port : static_cast<std::uint16_t>(ports.front());
}

}  // namespace switchyard
