// The server's Prometheus metrics (DESIGN.md, "Metrics"), served with prometheus-cpp.
//
// Hot-path methods take no lock and look nothing up: every label combination is resolved once,
// here, and kept as a reference (prometheus-cpp's advice for code that runs >100k times a second).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchyard {

enum class ErrorKind : std::uint8_t {
  kProtocol,        // malformed request; the connection is closed
  kUnknownCommand,  // the connection stays open
  kWrongArguments,  // wrong arity, syntax, a value that is not an integer
  kLimit,           // a configured limit was crossed (query buffer, output buffer, clients)
  kOom,             // the store is full
  kCount,
};

class Metrics {
 public:
  // `commands`: the label value of each command id, in id order (see commands.h).
  Metrics(const std::string& model, const std::vector<std::string>& commands);
  ~Metrics();

  // Starts the /metrics endpoint. Throws std::runtime_error with a one-line message when the
  // address cannot be bound. Returns the port bound (useful with port 0).
  std::uint16_t Serve(const std::string& bind, std::uint16_t port);

  void RecordRequest(std::size_t command, double seconds) {
    requests_[command]->Increment();
    durations_[command]->Observe(seconds);
  }
  void RecordError(ErrorKind kind) { errors_[static_cast<std::size_t>(kind)]->Increment(); }
  void ConnectionAccepted() {
    accepted_.Increment();
    active_.Increment();
  }
  void ConnectionClosed() { active_.Decrement(); }
  void ConnectionRejected() { rejected_.Increment(); }
  // A counter of suspensions of fibers or coroutines, written by one thread only (an event loop)
  // and summed at scrape time: counting a switch is then a plain add on a cache line no other
  // thread writes, and a scrape always sees every switch so far. OS-scheduled models never ask
  // for one, so they export 0.
  struct alignas(64) UserSwitchCounter {
    void Increment() {
      count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::atomic<std::uint64_t> count{0};
  };
  UserSwitchCounter& NewUserSwitchCounter();

  // switchyard_tasks_active: the units alive that serve connections. A model counts each
  // coroutine, fiber or thread serving a connection for its whole life (hold a Task), or each
  // call in flight (gRPC, where a call is what gRPC schedules).
  void TaskStarted() { tasks_active_.fetch_add(1, std::memory_order_relaxed); }
  void TaskFinished() { tasks_active_.fetch_sub(1, std::memory_order_relaxed); }
  class Task {
   public:
    explicit Task(Metrics& metrics) : metrics_(metrics) { metrics_.TaskStarted(); }
    ~Task() { metrics_.TaskFinished(); }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

   private:
    Metrics& metrics_;
  };

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::vector<prometheus::Counter*> requests_;
  std::vector<prometheus::Histogram*> durations_;
  std::array<prometheus::Counter*, static_cast<std::size_t>(ErrorKind::kCount)> errors_{};
  prometheus::Counter& accepted_;
  prometheus::Counter& rejected_;
  prometheus::Gauge& active_;
  std::shared_ptr<prometheus::Collectable> user_switch_collector_;
  // Tasks alive and the run-queue wait, read at scrape time (TaskCollector in metrics.cc).
  std::atomic<std::int64_t> tasks_active_{0};
  std::shared_ptr<prometheus::Collectable> task_collector_;
};

// What /proc and getrusage say about this process right now; exported as the OS-level metrics.
struct ProcessStats {
  std::uint64_t voluntary_switches = 0;
  std::uint64_t involuntary_switches = 0;
  double user_cpu_seconds = 0;
  double system_cpu_seconds = 0;
  std::uint64_t rss_bytes = 0;
  std::uint64_t pss_bytes = 0;
  std::uint64_t threads = 0;
};
ProcessStats ReadProcessStats();

}  // namespace switchyard
