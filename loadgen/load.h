// The load generator's engine: T threads, each with its own io_context and its share of the
// connections, driving a RESP server closed-loop (`pipeline` requests in flight per connection)
// or open-loop (a schedule of intended send times at `rate` requests per second in total,
// latency counted from the intended time: coordinated-omission correction, as wrk2 does).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loadgen/histogram.h"
#include "loadgen/machine_steal.h"
#include "loadgen/workload.h"
#include "proto/loadgen.pb.h"

namespace switchyard::loadgen {

struct LoadConfig {
  std::string protocol = "resp";  // or "grpc": proto/kv.proto, run by RunGrpcLoad (grpc_load.h)
  std::string host = "127.0.0.1";
  std::uint16_t port = 6380;
  unsigned connections = 50;
  unsigned threads = 1;
  unsigned pipeline = 1;  // closed loop only
  double rate = 0;        // requests per second in total; 0 = closed loop
  Schedule::Arrival arrival = Schedule::Arrival::kUniform;
  double duration_seconds = 10;
  double warmup_seconds = 2;
  std::uint64_t requests = 0;  // when non-zero, stop after this many (warm-up included)
  std::string mix = "get:90,set:10";
  std::uint64_t keys = 100000;
  std::string key_dist = "uniform";
  std::string value_size = "64";
  double drain_seconds = 5;            // how long to wait for replies once sending has stopped
  double connect_timeout_seconds = 5;  // each connection, before the run starts
  // Open loop: wake this long before each request is due and spin (still serving replies) until
  // the exact time, so the thread's own wake-up delay is not charged to the server as latency
  // (see spin_window.h). Negative: learn the window from how late this machine's sleeps end. 0:
  // sleep until each request is due. Time spent spinning is not counted as the client being busy.
  double spin_seconds = -1;
  // Spin on the event loop instead of sleeping in epoll_wait: no wake-up latency on timers or
  // replies (what precise open-loop generators do), at the price of a whole CPU per thread.
  bool busy_poll = false;
  // gRPC only: once the run is over, keep every connection open, idle, this long (or until
  // Ctrl-C) before closing, so that what an idle connection costs the server can be measured.
  double hold_idle_seconds = 0;
};

// What the worker threads publish a few times a second, for the progress line and the
// Prometheus endpoint. Everything cumulative except `latency_interval`, which the reader takes.
struct LiveStats {
  std::mutex mutex;
  std::uint64_t ok = 0, errors = 0, failed = 0, sent = 0;
  Histogram latency_interval;  // corrected latencies since the last Take
  std::int64_t max_lag_interval_ns = 0;
  bool measuring = false;  // past the warm-up
};

// Above this share of the CPU it may use, the load generator flags a run client-limited: it is out
// of CPU at that rate (the sweep does not run such a rate again).
inline constexpr double kClientBusyLimit = 0.9;

// Shared by both engines: steady-clock nanoseconds (the unit of every schedule and latency),
// back to a time point, and this process's CPU time (user + system) so far.
std::int64_t NowNs();
std::chrono::steady_clock::time_point ToTimePoint(std::int64_t ns);
double ProcessCpuSeconds();

// The SpinWindow argument for a --spin value in seconds (negative: learn it).
std::int64_t SpinWindowNs(double spin_seconds);

// Everything one engine thread measures; merged exactly into the run's totals at the end.
struct ThreadStats {
  Histogram latency, uncorrected, schedule_lag;
  Histogram reply_pickup;  // open loop: how long replies waited in the socket for this thread
  std::uint64_t ok = 0, errors = 0, failed = 0, sent = 0;
  std::int64_t last_reply_ns = 0, last_send_ns = 0;
  // Published to LiveStats on each tick.
  Histogram latency_interval;
  std::uint64_t published_ok = 0, published_errors = 0, published_failed = 0, published_sent = 0;
  std::int64_t max_lag_interval_ns = 0;
  std::uint64_t connections_lost = 0;
  std::string first_loss;    // why the first lost connection was given up
  std::int64_t spin_ns = 0;  // time spent spinning to send on schedule (--spin)
  // Measured part: time the thread was runnable but waiting for a CPU (other work on its CPU).
  std::int64_t run_queue_wait_ns = 0;

  // Adds another thread's figures (not the live ones).
  void MergeTotals(const ThreadStats& other);
  // Hands what changed since the last call to the live figures (`measuring`: past the warm-up).
  void PublishTo(LiveStats& live, bool measuring);
};

// A whole run as an engine saw it, whatever the protocol: turned into a result by MakeResult.
struct RunTotals {
  ThreadStats merged;               // every thread's figures
  unsigned threads = 1;             // engine threads that ran
  double cpu_seconds = 0;           // the client's own CPU (user + system) over the measured part
  std::int64_t warm_end_ns = 0;     // when measuring began
  std::int64_t end_ns = 0;          // when the last thread finished
  std::int64_t spin_window_ns = 0;  // the widest thread's window at the end; 0: no spinning
  MachineSteal steal_start, steal_end;  // the machine's steal over the measured part
};

// What both engines check and set up before connecting: the counts are at least 1 and the rate
// not negative (std::invalid_argument otherwise), and the descriptor limit is raised to the hard
// one for thousands of connections. Returns the threads to run: at most one a connection.
unsigned PrepareRun(const LoadConfig& config);

// The result of a run: its spec, figures and histograms, and whether the client was the limit.
pb::LoadResult MakeResult(const LoadConfig& config, const RunTotals& run);

// What both engines do once every connection is made: give each connection its schedule (open
// loop), start every thread at one instant a little ahead, measure the client's own CPU over the
// measured part only, and merge what the threads measured. A Worker has `connections` (each with
// SetSchedule), Run(start_ns), `stats` and its SpinWindow `spin`.
template <typename Worker>
RunTotals RunWorkers(const LoadConfig& config, std::vector<std::unique_ptr<Worker>>& workers) {
  const auto threads = static_cast<unsigned>(workers.size());
  const std::int64_t start_ns = NowNs() + 20'000'000;
  if (config.rate > 0) {
    const double connection_rate = config.rate / config.connections;
    for (unsigned c = 0; c < config.connections; ++c) {
      // Connection c is the (c / threads)-th of worker c % threads; uniform phases interleave
      // the connections evenly over one interval.
      workers[c % threads]->connections[c / threads]->SetSchedule(
          Schedule(start_ns, connection_rate, static_cast<double>(c) / config.connections,
                   config.arrival, 0x5eed0000 + c));
    }
  }
  std::vector<std::thread> running;
  for (auto& worker : workers) {
    running.emplace_back([&worker, start_ns] { worker->Run(start_ns); });
  }
  RunTotals run;
  run.threads = threads;
  run.warm_end_ns = start_ns + static_cast<std::int64_t>(config.warmup_seconds * 1e9);
  std::this_thread::sleep_until(ToTimePoint(run.warm_end_ns));
  const double cpu_start = ProcessCpuSeconds();
  run.steal_start = ReadMachineSteal();
  for (auto& thread : running) thread.join();
  run.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  run.steal_end = ReadMachineSteal();
  run.end_ns = std::max(NowNs(), run.warm_end_ns + 1);
  for (auto& worker : workers) {
    run.merged.MergeTotals(worker->stats);
    if (config.rate > 0 && !config.busy_poll && worker->spin.enabled())
      run.spin_window_ns = std::max(run.spin_window_ns, worker->spin.ns());
  }
  return run;
}

// Set from a signal handler: stop sending, collect the replies owed, report what was measured.
extern std::atomic<bool> g_stop_requested;

// Runs one load and returns its result (spec, figures and histograms filled). `live` may be null.
// Throws std::runtime_error with a one-line message when the target cannot be reached.
pb::LoadResult RunLoad(const LoadConfig& config, LiveStats* live);

// Conversions between histograms and their result-file form (exact: FromProto(ToProto(h)) == h).
void FillLatency(const Histogram& histogram, pb::Latency* latency);
void ToProto(const Histogram& histogram, pb::Histogram* message);
Histogram FromProto(const pb::Histogram& message);
// A result's four histograms, each as percentiles and whole: the one place that lists them.
void SetHistograms(const Histogram& latency, const Histogram& uncorrected,
                   const Histogram& schedule_lag, const Histogram& reply_pickup,
                   pb::LoadResult* result);
// The delayed-ACK stall signature of a result's latency histogram (stall_signature.h): set by a
// run and recomputed by a merge.
void SetDelayedAckStall(const Histogram& latency, pb::LoadResult* result);

}  // namespace switchyard::loadgen
