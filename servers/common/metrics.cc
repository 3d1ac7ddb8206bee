#include "servers/common/metrics.h"

#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "servers/common/io_buffers.h"
#include "servers/common/metrics_exposer.h"
#include "servers/common/run_queue_wait.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "dev"
#endif

namespace switchyard {
namespace {

// 1-2-5 steps from 1 µs to 10 s: the range between a cached GET and a stalled event loop.
constexpr std::array<double, kDurationBuckets - 1> kDurationBounds = {
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3,
    5e-3, 1e-2, 2e-2, 5e-2, 0.1,  0.2,  0.5,  1,    2,    5,    10};

prometheus::Histogram::BucketBoundaries DurationBuckets() {
  return {kDurationBounds.begin(), kDurationBounds.end()};
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }
std::uint64_t Micros(const timeval& tv) {
  return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(tv.tv_usec);
}

// "Rss:  1234 kB" lines of /proc/<pid>/smaps_rollup; PSS counts each shared page once, so it is
// what a process really costs (the store's shared mapping is not counted once per worker).
void ReadMemory(const std::string& proc, ProcessStats& stats) {
  std::ifstream smaps(proc + "/smaps_rollup");
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

// "Threads:" and, for another process, its main thread's "voluntary_ctxt_switches:" from
// /proc/<pid>/status. False if the process is gone.
bool ReadStatus(const std::string& proc, ProcessStats& stats, bool switches) {
  std::ifstream status(proc + "/status");
  if (!status) return false;
  std::string line;
  const auto value = [&line](std::size_t skip) { return std::stoull(line.substr(skip)); };
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) stats.threads = value(8);
    if (!switches) continue;
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) stats.voluntary_switches = value(24);
    if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) stats.involuntary_switches = value(27);
  }
  return true;
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

double Sum(const MetricsSlot* slots, std::size_t count,
           const std::atomic<std::uint64_t> MetricsSlot::*field) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < count; ++i)
    total += (slots[i].*field).load(std::memory_order_relaxed);
  return static_cast<double>(total);
}

}  // namespace

// The label of each ErrorKind, in order.
constexpr const char* kErrorKinds[] = {"protocol", "unknown_command", "wrong_arguments", "limit",
                                       "oom",      "store_damaged"};
static_assert(std::size(kErrorKinds) == static_cast<std::size_t>(ErrorKind::kCount));

struct Metrics::SharedArea {
  ExitedProcesses exited;
  std::atomic<std::uint64_t> connections{0};  // ever accepted, by every process: the next id
  // The slots follow, from the next 64-byte boundary.
};

std::size_t Metrics::BucketOf(double seconds) {
  return static_cast<std::size_t>(
      std::lower_bound(kDurationBounds.begin(), kDurationBounds.end(), seconds) -
      kDurationBounds.begin());
}

std::size_t Metrics::SlotsOffset() { return (sizeof(SharedArea) + 63) / 64 * 64; }

void Metrics::MapSlots(std::size_t count) {
  if (shared_ != nullptr) munmap(shared_, shared_bytes_);
  if (shared_fd_ >= 0) close(shared_fd_);
  shared_bytes_ = SlotsOffset() + count * sizeof(MetricsSlot);
  // MAP_SHARED: a child forked later writes into the very pages the parent reads. A memfd rather
  // than an anonymous mapping, so that a child that is another program can map it too.
  shared_fd_ = memfd_create("switchyard-metrics", MFD_CLOEXEC);
  if (shared_fd_ < 0 || ftruncate(shared_fd_, static_cast<off_t>(shared_bytes_)) != 0) {
    throw std::runtime_error(std::string("cannot create the metrics slots: ") +
                             std::strerror(errno));
  }
  void* memory = mmap(nullptr, shared_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd_, 0);
  if (memory == MAP_FAILED) {
    throw std::runtime_error(std::string("cannot map the metrics slots: ") + std::strerror(errno));
  }
  shared_ = new (memory) SharedArea{};
  slots_ = reinterpret_cast<MetricsSlot*>(static_cast<char*>(memory) + SlotsOffset());
  for (std::size_t i = 0; i < count; ++i) new (&slots_[i]) MetricsSlot{};
  slot_count_ = count;
  slot_ = &slots_[0];
  io_buffers::CountIn(&slot_->io_buffer_bytes);
}

void Metrics::UseChildSlot(std::size_t child) {
  slot_ = &slots_[1 + child];
  io_buffers::CountIn(&slot_->io_buffer_bytes);
}

void Metrics::ReserveChildSlots(std::size_t children) { MapSlots(1 + children); }

std::string Metrics::SlotLayoutJson(std::size_t child) const {
  const auto quoted = [](const std::string& text) { return "\"" + text + "\""; };
  std::ostringstream out;
  out << "{\"version\": 1, \"slot_offset\": " << SlotsOffset() + (1 + child) * sizeof(MetricsSlot)
      << ", \"max_commands\": " << kMaxCommands << ", \"commands\": [";
  for (std::size_t c = 0; c < commands_.size(); ++c) out << (c ? ", " : "") << quoted(commands_[c]);
  out << "], \"duration_bounds_seconds\": [";
  for (std::size_t b = 0; b < kDurationBounds.size(); ++b)
    out << (b ? ", " : "") << kDurationBounds[b];
  out << "], \"error_kinds\": [";
  for (std::size_t k = 0; k < std::size(kErrorKinds); ++k)
    out << (k ? ", " : "") << quoted(kErrorKinds[k]);
  // offsetof on a struct of std::atomic members: standard-layout, as each atomic of an integer is.
  out << "], \"fields\": {"
      << "\"requests\": " << offsetof(MetricsSlot, requests)
      << ", \"duration_buckets\": " << offsetof(MetricsSlot, duration_buckets)
      << ", \"duration_nanos\": " << offsetof(MetricsSlot, duration_nanos)
      << ", \"errors\": " << offsetof(MetricsSlot, errors)
      << ", \"accepted\": " << offsetof(MetricsSlot, accepted)
      << ", \"rejected\": " << offsetof(MetricsSlot, rejected)
      << ", \"failed\": " << offsetof(MetricsSlot, failed)
      << ", \"active\": " << offsetof(MetricsSlot, active)
      << ", \"tasks\": " << offsetof(MetricsSlot, tasks)
      << ", \"user_switches\": " << offsetof(MetricsSlot, user_switches)
      << ", \"gc_cycles\": " << offsetof(MetricsSlot, gc_cycles)
      << ", \"gc_pause_nanos\": " << offsetof(MetricsSlot, gc_pause_nanos) << "}}";
  return out.str();
}

std::uint64_t Metrics::NewConnectionId() {
  return shared_->connections.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Metrics::ChildExited(std::size_t child, const rusage& usage,
                          std::uint64_t run_queue_wait_nanos) {
  // The exited totals first, then the pid cleared: a scrape in between finds /proc/<pid> gone
  // and counts the child once, not twice.
  shared_->exited.user_micros.fetch_add(Micros(usage.ru_utime));
  shared_->exited.run_queue_wait_nanos.fetch_add(run_queue_wait_nanos);
  shared_->exited.system_micros.fetch_add(Micros(usage.ru_stime));
  shared_->exited.voluntary_switches.fetch_add(static_cast<std::uint64_t>(usage.ru_nvcsw));
  shared_->exited.involuntary_switches.fetch_add(static_cast<std::uint64_t>(usage.ru_nivcsw));
  MetricsSlot& slot = slots_[1 + child];
  slot.pid.store(0);
  slot.active.store(0);           // its connections died with it
  slot.tasks.store(0);            // and so did the unit serving them
  slot.io_buffer_bytes.store(0);  // and its buffers
}

bool Metrics::TryAdmitConnection(std::size_t max_clients) {
  slot_->active.fetch_add(1);  // sequentially consistent: seen by any later admission's sum
  std::int64_t active = 0;
  for (std::size_t i = 0; i < slot_count_; ++i) active += slots_[i].active.load();
  if (active > static_cast<std::int64_t>(max_clients)) {
    slot_->active.fetch_sub(1);
    ConnectionRejected();
    return false;
  }
  Add(slot_->accepted);
  return true;
}

// Turns the slots and the OS view of every process into Prometheus series, at scrape time.
class SlotCollector : public prometheus::Collectable {
 public:
  explicit SlotCollector(const Metrics& metrics) : metrics_(metrics) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out = CollectRequests();
    CollectProcesses(out);
    return out;
  }

 private:
  std::vector<prometheus::MetricFamily> CollectRequests() const {
    using prometheus::MetricType;
    const MetricsSlot* slots = metrics_.slots_;
    const std::size_t count = metrics_.slot_count_;
    std::vector<prometheus::ClientMetric> requests, durations, errors;
    for (std::size_t c = 0; c < metrics_.commands_.size(); ++c) {
      const prometheus::ClientMetric::Label label{"command", metrics_.commands_[c]};
      std::uint64_t served = 0, nanos = 0;
      std::array<std::uint64_t, kDurationBuckets> buckets{};
      for (std::size_t s = 0; s < count; ++s) {
        served += slots[s].requests[c].load(std::memory_order_relaxed);
        nanos += slots[s].duration_nanos[c].load(std::memory_order_relaxed);
        for (std::size_t b = 0; b < kDurationBuckets; ++b)
          buckets[b] += slots[s].duration_buckets[c][b].load(std::memory_order_relaxed);
      }
      requests.push_back(Value(static_cast<double>(served), label));
      prometheus::ClientMetric histogram;
      histogram.label.push_back(label);
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < kDurationBuckets; ++b) {
        cumulative += buckets[b];
        histogram.histogram.bucket.push_back(
            {cumulative, b < kDurationBounds.size() ? kDurationBounds[b]
                                                    : std::numeric_limits<double>::infinity()});
      }
      // The count is the buckets' total, so _count and the +Inf bucket always agree.
      histogram.histogram.sample_count = cumulative;
      histogram.histogram.sample_sum = static_cast<double>(nanos) / 1e9;
      durations.push_back(std::move(histogram));
    }
    for (std::size_t k = 0; k < std::size(kErrorKinds); ++k) {
      std::uint64_t total = 0;
      for (std::size_t s = 0; s < count; ++s)
        total += slots[s].errors[k].load(std::memory_order_relaxed);
      errors.push_back(Value(static_cast<double>(total), {"kind", kErrorKinds[k]}));
    }
    std::int64_t active = 0;
    for (std::size_t s = 0; s < count; ++s) active += slots[s].active.load();

    std::vector<prometheus::MetricFamily> out;
    out.push_back(Family("switchyard_requests_total", "Requests served, by command",
                         MetricType::Counter, std::move(requests)));
    out.push_back(Family("switchyard_request_duration_seconds",
                         "Service time inside the server, from parsed request to reply",
                         MetricType::Histogram, std::move(durations)));
    out.push_back(Family("switchyard_request_errors_total",
                         "Requests answered with an error, by kind", MetricType::Counter,
                         std::move(errors)));
    out.push_back(Family("switchyard_connections_accepted_total", "Connections accepted",
                         MetricType::Counter, {Value(Sum(slots, count, &MetricsSlot::accepted))}));
    out.push_back(Family("switchyard_connections_rejected_total",
                         "Connections refused because --max-clients were connected",
                         MetricType::Counter, {Value(Sum(slots, count, &MetricsSlot::rejected))}));
    out.push_back(Family("switchyard_connections_failed_total",
                         "Connections closed because an error escaped their handling (logged)",
                         MetricType::Counter, {Value(Sum(slots, count, &MetricsSlot::failed))}));
    out.push_back(Family("switchyard_gc_cycles_total",
                         "Garbage collections of a peer's runtime (0: the C++ models have none)",
                         MetricType::Counter, {Value(Sum(slots, count, &MetricsSlot::gc_cycles))}));
    out.push_back(Family("switchyard_gc_pause_seconds_total",
                         "Time a peer's garbage collector stopped the program", MetricType::Counter,
                         {Value(Sum(slots, count, &MetricsSlot::gc_pause_nanos) / 1e9)}));
    out.push_back(Family("switchyard_connections_active", "Connections open now", MetricType::Gauge,
                         {Value(static_cast<double>(active))}));
    return out;
  }

  // A child's user/system split follows the ratio of its tick counts, which moves as it runs;
  // like the kernel, hold each part at least where it was last seen, so neither counter goes
  // back (the total only grows, so one part can always give way).
  void KeepCpuMonotonic(pid_t pid, ProcessStats& child) const {
    std::lock_guard lock(previous_mutex_);
    auto& [user, system] = previous_cpu_[pid];
    const double total = child.user_cpu_seconds + child.system_cpu_seconds;
    if (child.system_cpu_seconds < system) {
      child.system_cpu_seconds = std::min(system, total);
      child.user_cpu_seconds = total - child.system_cpu_seconds;
    }
    if (child.user_cpu_seconds < user) {
      child.user_cpu_seconds = std::min(user, total);
      child.system_cpu_seconds = total - child.user_cpu_seconds;
    }
    user = child.user_cpu_seconds;
    system = child.system_cpu_seconds;
  }

  // This process (every thread, live or exited), each live child from /proc, and the children
  // that have exited, so that nothing a worker did vanishes when it does.
  void CollectProcesses(std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    ProcessStats s = ReadProcessStats();
    std::uint64_t processes = 1;
    for (std::size_t i = 1; i < metrics_.slot_count_; ++i) {
      const pid_t pid = metrics_.slots_[i].pid.load();
      ProcessStats child;
      ThreadSwitches threads;
      if (pid <= 0 || !ReadChildProcessStats(pid, &child, &threads)) continue;
      KeepCpuMonotonic(pid, child);
      CountThreadSwitches(pid, std::move(threads), child);
      ++processes;
      s.voluntary_switches += child.voluntary_switches;
      s.involuntary_switches += child.involuntary_switches;
      s.user_cpu_seconds += child.user_cpu_seconds;
      s.system_cpu_seconds += child.system_cpu_seconds;
      s.rss_bytes += child.rss_bytes;
      s.pss_bytes += child.pss_bytes;
      s.threads += child.threads;
    }
    {
      // Forget children that are gone, so restarts do not grow the map.
      std::lock_guard lock(previous_mutex_);
      const auto gone = [&](const auto& entry) {
        for (std::size_t i = 1; i < metrics_.slot_count_; ++i)
          if (metrics_.slots_[i].pid.load() == entry.first) return false;
        return true;
      };
      std::erase_if(previous_cpu_, gone);
      std::erase_if(threads_, gone);
    }
    const ExitedProcesses& exited = metrics_.shared_->exited;
    s.voluntary_switches += exited.voluntary_switches.load();
    s.involuntary_switches += exited.involuntary_switches.load();
    s.user_cpu_seconds += static_cast<double>(exited.user_micros.load()) / 1e6;
    s.system_cpu_seconds += static_cast<double>(exited.system_micros.load()) / 1e6;

    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    out.push_back(Family("switchyard_os_context_switches_total",
                         "Context switches of every thread of every process of the server, live "
                         "or exited",
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
                         {Value(d(processes))}));
  }

  // A child's switches summed over its threads, live and gone: /proc/<pid>/status counts the main
  // thread's alone, and a child with many threads (a peer: Go's, pythreads' thread a connection)
  // retires some as it runs. Each thread's last count is kept while it lives and folded into the
  // child's total when it is gone, so the counter never goes back; only what a thread did between
  // the last scrape and its end is missed.
  void CountThreadSwitches(pid_t pid, ThreadSwitches live, ProcessStats& child) const {
    if (live.empty()) return;  // keep what the main thread's status said
    std::lock_guard lock(previous_mutex_);
    ChildThreads& known = threads_[pid];
    for (const auto& [tid, counts] : known.live) {
      if (live.count(tid) != 0) continue;
      known.gone_voluntary += counts.first;
      known.gone_involuntary += counts.second;
    }
    known.live = std::move(live);
    child.voluntary_switches = known.gone_voluntary;
    child.involuntary_switches = known.gone_involuntary;
    for (const auto& [tid, counts] : known.live) {
      child.voluntary_switches += counts.first;
      child.involuntary_switches += counts.second;
    }
  }

  const Metrics& metrics_;
  mutable std::mutex previous_mutex_;  // scrapes may overlap
  // Each live child's last user and system seconds, keyed by pid; exited ones are dropped.
  mutable std::unordered_map<pid_t, std::pair<double, double>> previous_cpu_;
  struct ChildThreads {
    ThreadSwitches live;
    std::uint64_t gone_voluntary = 0, gone_involuntary = 0;
  };
  mutable std::unordered_map<pid_t, ChildThreads> threads_;  // by child, as previous_cpu_
};

// Sums the per-thread user-switch counters at scrape time, and what peers counted in their slots.
class UserSwitchCollector : public prometheus::Collectable {
 public:
  explicit UserSwitchCollector(const Metrics& metrics) : metrics_(metrics) {}
  Metrics::UserSwitchCounter& Add() {
    std::lock_guard lock(mutex_);
    return counters_.emplace_back();  // a deque never moves its elements
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::uint64_t total = static_cast<std::uint64_t>(
        Sum(metrics_.slots_, metrics_.slot_count_, &MetricsSlot::user_switches));
    {
      std::lock_guard lock(mutex_);
      for (const auto& counter : counters_) total += counter.count.load(std::memory_order_relaxed);
    }
    return {Family("switchyard_user_switches_total",
                   "Suspensions of fibers, coroutines or greenlets, switches of goroutines (0 for "
                   "OS-scheduled models)",
                   prometheus::MetricType::Counter, {Value(static_cast<double>(total))})};
  }

 private:
  const Metrics& metrics_;
  mutable std::mutex mutex_;
  std::deque<Metrics::UserSwitchCounter> counters_;
};

// The units alive and how long the server's threads waited for a CPU (see run_queue_wait.h).
// A model with child processes: their tasks are in their slots, the live ones' threads are read
// from /proc/<pid>, and what the exited ones waited was kept when they were reaped (ChildExited).
class TaskCollector : public prometheus::Collectable {
 public:
  explicit TaskCollector(const Metrics& metrics) : metrics_(metrics) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::int64_t live_tasks = 0;
    std::uint64_t children_waited = metrics_.shared_->exited.run_queue_wait_nanos.load();
    for (std::size_t i = 0; i < metrics_.slot_count_; ++i) {
      live_tasks += metrics_.slots_[i].tasks.load(std::memory_order_relaxed);
      const pid_t pid = metrics_.slots_[i].pid.load();
      if (i > 0 && pid > 0)
        children_waited += LiveRunQueueWaitNanos("/proc/" + std::to_string(pid));
    }
    const double tasks = static_cast<double>(live_tasks);
    std::vector<prometheus::MetricFamily> families = {
        Family("switchyard_tasks_active",
               "Units alive serving connections: coroutines, fibers or threads (one a "
               "connection), pool workers or processes; gRPC calls in flight",
               prometheus::MetricType::Gauge, {Value(tasks)}),
        Family("switchyard_run_queue_wait_seconds_total",
               "Time the server's threads were runnable but waited for a CPU (schedstat)",
               prometheus::MetricType::Counter,
               {Value(RunQueueWait::TotalSeconds(children_waited))})};
    {
      std::lock_guard lock(metrics_.read_at_scrape_mutex_);
      for (const auto& gauge : metrics_.read_at_scrape_) {
        families.push_back(
            Family(gauge.name, gauge.help, prometheus::MetricType::Gauge, {Value(gauge.read())}));
      }
    }
    return families;
  }

 private:
  const Metrics& metrics_;
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
  ReadMemory("/proc/self", stats);
  ReadStatus("/proc/self", stats, /*switches=*/false);
  return stats;
}

bool ReadChildProcessStats(pid_t pid, ProcessStats* stats, ThreadSwitches* threads) {
  const std::string proc = "/proc/" + std::to_string(pid);
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks, for the whole
  // thread group; the command name before them may hold spaces, so count from its ')'.
  std::ifstream stat_file(proc + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto name_end = stat.rfind(')');
  if (name_end == std::string::npos) return false;
  std::istringstream fields(stat.substr(name_end + 2));
  std::string field;
  for (int i = 3; i < 14 && fields >> field; ++i) {
  }
  std::uint64_t utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return false;
  // Those are whole 10 ms ticks, truncated: a prefork worker that ran 4 ms shows 0, and with a
  // few hundred lightly used workers the sum fell a quarter short. The exact total is each
  // thread's time on a CPU in nanoseconds (schedstat's first field); it is split into user and
  // system in the ticks' proportion, as the kernel itself does for getrusage (cputime_adjust).
  std::uint64_t on_cpu_ns = 0;
  bool exact = true;
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(proc + "/task", error)) {
    std::ifstream schedstat(task.path() / "schedstat");
    std::uint64_t ns = 0;
    if (!(schedstat >> ns)) exact = false;
    on_cpu_ns += ns;
    ProcessStats thread;
    if (threads && ReadStatus(task.path().string(), thread, /*switches=*/true)) {
      (*threads)[std::stoi(task.path().filename().string())] = {thread.voluntary_switches,
                                                                thread.involuntary_switches};
    }
  }
  if (error && threads) threads->clear();
  const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  if (error || !exact) {
    stats->user_cpu_seconds = static_cast<double>(utime) * tick;
    stats->system_cpu_seconds = static_cast<double>(stime) * tick;
  } else {
    // schedstat covers live threads only; the ticks also hold threads that have ended (a peer
    // with a thread a connection, pythreads, retires one with every connection), truncated to
    // one tick at most. The larger of the two is the closer: exact while no thread has ended.
    const double total =
        std::max(static_cast<double>(on_cpu_ns) / 1e9, static_cast<double>(utime + stime) * tick);
    const double system_share =
        utime + stime == 0 ? 0 : static_cast<double>(stime) / static_cast<double>(utime + stime);
    stats->system_cpu_seconds = total * system_share;
    stats->user_cpu_seconds = total - stats->system_cpu_seconds;
  }
  if (!ReadStatus(proc, *stats, /*switches=*/true)) return false;
  ReadMemory(proc, *stats);
  return true;
}

Metrics::Metrics(const std::string& model, const std::vector<std::string>& commands)
    : commands_(commands),
      registry_(std::make_shared<prometheus::Registry>()),
      user_switch_collector_(std::make_shared<UserSwitchCollector>(*this)) {
  if (commands.size() > kMaxCommands) throw std::logic_error("more commands than metrics slots");
  MapSlots(1);
  slot_collector_ = std::make_shared<SlotCollector>(*this);
  prometheus::BuildGauge()
      .Name("switchyard_build_info")
      .Help("Which model and version this server is")
      .Register(*registry_)
      .Add({{"model", model}, {"version", SWITCHYARD_VERSION}})
      .Set(1);
}

void Metrics::ExportIoBufferBytes() {
  ExportGaugeReadAtScrape("switchyard_io_buffer_bytes",
                          "Bytes of the connections' read and reply buffers: those lent to "
                          "connections and those the threads keep to lend",
                          [this] {
                            std::int64_t bytes = 0;
                            for (std::size_t i = 0; i < slot_count_; ++i)
                              bytes += slots_[i].io_buffer_bytes.load(std::memory_order_relaxed);
                            return static_cast<double>(bytes);
                          });
}

void Metrics::ExportGaugeReadAtScrape(std::string name, std::string help,
                                      std::function<double()> read) {
  std::lock_guard lock(read_at_scrape_mutex_);
  read_at_scrape_.push_back({std::move(name), std::move(help), std::move(read)});
}

Metrics::QueueMetrics Metrics::AddQueueMetrics() {
  auto& depth = prometheus::BuildGauge()
                    .Name("switchyard_queue_depth")
                    .Help("Ready connections waiting in the queue for a worker")
                    .Register(*registry_)
                    .Add({});
  auto& wait = prometheus::BuildHistogram()
                   .Name("switchyard_queue_wait_seconds")
                   .Help("Time a ready connection waited in the queue before a worker took it")
                   .Register(*registry_)
                   .Add({}, DurationBuckets());
  return {depth, wait};
}

Metrics::~Metrics() {
  endpoint_.reset();  // no scrape may read the slots once they are unmapped
  io_buffers::StopCountingIn(&slot_->io_buffer_bytes);
  munmap(shared_, shared_bytes_);
  close(shared_fd_);
}

std::uint16_t Metrics::Serve(const std::string& bind, std::uint16_t port) {
  endpoint_ = std::make_unique<MetricsEndpoint>(bind, port, /*threads=*/1);
  endpoint_->Register(registry_);
  endpoint_->Register(slot_collector_);
  endpoint_->Register(user_switch_collector_);
  task_collector_ = std::make_shared<TaskCollector>(*this);
  endpoint_->Register(task_collector_);
  return endpoint_->port();
}

}  // namespace switchyard
