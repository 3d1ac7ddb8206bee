// The server's Prometheus metrics (DESIGN.md, "Metrics"), served with prometheus-cpp.
//
// Requests, errors and connections are counted in plain atomics kept in a memory map shared across
// fork() (a MetricsSlot), and turned into Prometheus series only when scraped. The hot path then
// takes no lock and looks nothing up, and a model with several processes (prefork) gives each
// child a slot of its own, so one endpoint in the parent sums what every process counted, even
// processes that have since exited. A single-process model uses one slot.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchyard {

class MetricsEndpoint;

enum class ErrorKind : std::uint8_t {
  kProtocol,        // malformed request; the connection is closed
  kUnknownCommand,  // the connection stays open
  kWrongArguments,  // wrong arity, syntax, a value that is not an integer
  kLimit,           // a configured limit was crossed (query buffer, output buffer, clients)
  kOom,             // the store is full
  kStoreDamaged,    // a write refused because the store's allocator may be damaged (store_shard.cc)
  kCount,
};

// Request-duration buckets: 1-2-5 steps from 1 µs to 10 s (the range between a cached GET and a
// stalled event loop), then +Inf.
inline constexpr std::size_t kDurationBuckets = 7 * 3 + 1 + 1;
inline constexpr std::size_t kMaxCommands = 48;

// What one process counts. Relaxed atomics: each is an independent tally read at scrape time.
struct alignas(64) MetricsSlot {
  std::atomic<std::uint64_t> requests[kMaxCommands];
  std::atomic<std::uint64_t> duration_buckets[kMaxCommands][kDurationBuckets];
  std::atomic<std::uint64_t> duration_nanos[kMaxCommands];
  std::atomic<std::uint64_t> errors[static_cast<std::size_t>(ErrorKind::kCount)];
  std::atomic<std::uint64_t> accepted;
  std::atomic<std::uint64_t> rejected;
  std::atomic<std::uint64_t> failed;
  std::atomic<std::int64_t> active;
  // Set by the parent for a child process's slot while the child lives: its CPU, switches and
  // memory are read from /proc/<pid> at scrape time.
  std::atomic<pid_t> pid;
  // Units alive serving connections in this process (switchyard_tasks_active).
  std::atomic<std::int64_t> tasks;
  // Counted by a peer (docs/peers.md), whose runtime switches and collects in user space: its
  // scheduler's switches, and its garbage collector's cycles and the time they stopped it.
  std::atomic<std::uint64_t> user_switches;
  std::atomic<std::uint64_t> gc_cycles;
  std::atomic<std::uint64_t> gc_pause_nanos;
  // Bytes of the connections' read and reply buffers alive in this process (io_buffers.h).
  std::atomic<std::int64_t> io_buffer_bytes;
};

// What the children that have exited used, folded in when the parent reaps them (wait4).
struct ExitedProcesses {
  std::atomic<std::uint64_t> user_micros;
  std::atomic<std::uint64_t> system_micros;
  std::atomic<std::uint64_t> voluntary_switches;
  std::atomic<std::uint64_t> involuntary_switches;
  // Not in rusage: read from the zombie's /proc/<pid>/schedstat before it is reaped.
  std::atomic<std::uint64_t> run_queue_wait_nanos;
};

class Metrics {
 public:
  // `commands`: the label value of each command id, in id order (see commands.h).
  Metrics(const std::string& model, const std::vector<std::string>& commands);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Starts the /metrics endpoint. Throws std::runtime_error with a one-line message when the
  // address cannot be bound. Returns the port bound (useful with port 0). It starts threads.
  std::uint16_t Serve(const std::string& bind, std::uint16_t port);

  void RecordRequest(std::size_t command, double seconds) {
    Add(slot_->requests[command]);
    Add(slot_->duration_buckets[command][BucketOf(seconds)]);
    Add(slot_->duration_nanos[command], static_cast<std::uint64_t>(seconds * 1e9));
  }
  void RecordError(ErrorKind kind) { Add(slot_->errors[static_cast<std::size_t>(kind)]); }
  void ConnectionAccepted() {
    Add(slot_->accepted);
    slot_->active.fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionClosed() { slot_->active.fetch_sub(1, std::memory_order_relaxed); }
  void ConnectionRejected() { Add(slot_->rejected); }
  // An exception escaped a connection's handling, and that connection was closed.
  void ConnectionFailed() { Add(slot_->failed); }

  // --max-clients across processes: counts the connection as active (and accepted) unless that
  // makes more than `max_clients` active in all the slots together; else counts it rejected.
  // Two processes admitting at the same instant can both refuse at the limit, never both exceed
  // it (each counts itself before it reads the others).
  bool TryAdmitConnection(std::size_t max_clients);

  // A model with child processes (prefork): before the first fork and before Serve, reserve a
  // slot for each child; the child calls UseChildSlot(i) once forked, and its parent reports the
  // child's life with ChildStarted and ChildExited (with what wait4 returned).
  void ReserveChildSlots(std::size_t children);
  // A connection id unique across this server's processes (CLIENT ID), from 1.
  std::uint64_t NewConnectionId();
  void UseChildSlot(std::size_t child);
  // The shared area as a descriptor (a memfd), for a child that is another program (a peer,
  // docs/peers.md): it maps the descriptor and counts into child slot `child`, whose place and
  // fields SlotLayoutJson describes.
  int shared_fd() const { return shared_fd_; }
  std::string SlotLayoutJson(std::size_t child) const;
  void ChildStarted(std::size_t child, pid_t pid) { slots_[1 + child].pid.store(pid); }
  void ChildExited(std::size_t child, const rusage& usage, std::uint64_t run_queue_wait_nanos = 0);

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
  // coroutine, fiber or thread serving a connection, each pool worker or worker process, for its
  // whole life (hold a Task), or each call in flight (gRPC, where a call is what gRPC schedules).
  // Counted in this process's slot, so a worker process's count reaches the master's endpoint.
  void TaskStarted() { slot_->tasks.fetch_add(1, std::memory_order_relaxed); }
  void TaskFinished() { slot_->tasks.fetch_sub(1, std::memory_order_relaxed); }
  class Task {
   public:
    explicit Task(Metrics& metrics) : metrics_(metrics) { metrics_.TaskStarted(); }
    ~Task() { metrics_.TaskFinished(); }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

   private:
    Metrics& metrics_;
  };

  // switchyard_io_buffer_bytes, summed over the slots: exported by the models that serve
  // connections through Session (io_buffers.h counts into this process's slot); the others have
  // no such buffers to show.
  void ExportIoBufferBytes();

  // A gauge only the model can read, read at scrape time on the metrics endpoint's thread (so
  // `read` must be safe there: an atomic load, say). The coroutine model's frame bytes are one.
  void ExportGaugeReadAtScrape(std::string name, std::string help, std::function<double()> read);

  // The hand-off queue of a model that has one (thread_pool): how many ready connections wait for
  // a worker, and how long each waited. Registered on first call, so other models export neither.
  struct QueueMetrics {
    prometheus::Gauge& depth;
    prometheus::Histogram& wait;
  };
  QueueMetrics AddQueueMetrics();

  prometheus::Registry& registry() { return *registry_; }

 private:
  friend class SlotCollector;
  struct SharedArea;  // the slots and the exited totals, in one MAP_SHARED mapping

  static void Add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  static std::size_t BucketOf(double seconds);
  static std::size_t SlotsOffset();  // where the slots start in the shared area
  void MapSlots(std::size_t count);

  std::vector<std::string> commands_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  SharedArea* shared_ = nullptr;
  std::size_t shared_bytes_ = 0;
  int shared_fd_ = -1;
  std::size_t slot_count_ = 0;
  MetricsSlot* slots_ = nullptr;  // slots_[0]: this process; slots_[1 + i]: child i
  MetricsSlot* slot_ = nullptr;   // the slot this process counts into
  std::shared_ptr<prometheus::Collectable> slot_collector_;
  std::shared_ptr<prometheus::Collectable> user_switch_collector_;
  // Tasks alive and the run-queue wait, read at scrape time (TaskCollector in metrics.cc).
  friend class TaskCollector;
  friend class UserSwitchCollector;
  std::shared_ptr<prometheus::Collectable> task_collector_;
  struct GaugeReadAtScrape {
    std::string name, help;
    std::function<double()> read;
  };
  mutable std::mutex read_at_scrape_mutex_;  // guards read_at_scrape_
  std::vector<GaugeReadAtScrape> read_at_scrape_;
};

// What /proc and getrusage say about a process right now; exported as the OS-level metrics.
struct ProcessStats {
  std::uint64_t voluntary_switches = 0;
  std::uint64_t involuntary_switches = 0;
  double user_cpu_seconds = 0;
  double system_cpu_seconds = 0;
  std::uint64_t rss_bytes = 0;
  std::uint64_t pss_bytes = 0;
  std::uint64_t threads = 0;
};
// This process, every thread of it, live or exited (getrusage).
ProcessStats ReadProcessStats();
// Each live thread's voluntary and involuntary switches, by thread id.
using ThreadSwitches = std::unordered_map<pid_t, std::pair<std::uint64_t, std::uint64_t>>;
// Another process (a child), from /proc/<pid>: its CPU time covers all its threads, its switches
// only its main thread (prefork's children have one); `threads`, when given, gets each live
// thread's own switches from the same walk of /proc/<pid>/task. False if it no longer exists.
bool ReadChildProcessStats(pid_t pid, ProcessStats* stats, ThreadSwitches* threads = nullptr);

}  // namespace switchyard
