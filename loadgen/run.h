// The shape of a run, whatever the protocol: the checks before connecting, each connection's share
// of --requests and its seed, and the run itself: every connection given its schedule (open
// loop), every thread started at one instant a little ahead, the client's own CPU and the
// machine's steal measured over the measured part only, and what the threads measured merged
// into the run's totals, which result.h turns into a result.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "loadgen/ledger.h"
#include "loadgen/load.h"
#include "loadgen/machine_steal.h"
#include "loadgen/workload.h"

namespace switchyard::loadgen {

// A whole run as a transport saw it: turned into a result by MakeResult (result.h).
struct RunTotals {
  ThreadStats merged;               // every thread's figures
  unsigned threads = 1;             // engine threads that ran
  double cpu_seconds = 0;           // the client's own CPU (user + system) over the measured part
  std::int64_t warm_end_ns = 0;     // when measuring began
  std::int64_t end_ns = 0;          // when the last thread finished
  std::int64_t spin_window_ns = 0;  // the widest thread's window at the end; 0: no spinning
  MachineSteal steal_start, steal_end;  // the machine's steal over the measured part
};

// What both transports check and set up before connecting: the counts are at least 1 and the rate
// not negative (std::invalid_argument otherwise), and the descriptor limit is raised to the hard
// one for thousands of connections. Returns the threads to run: at most one a connection.
unsigned PrepareRun(const LoadConfig& config);

// The workload the flags describe (throws std::invalid_argument naming a bad flag).
Workload MakeWorkload(const LoadConfig& config);

// This worker's connections (LoadConfig::workers): connection c of the run is worker
// c % workers's (c / workers)-th. Every figure of a connection below takes its index in the run.
unsigned OwnConnections(const LoadConfig& config);
inline unsigned RunConnection(const LoadConfig& config, unsigned own) {
  return config.worker_index + own * config.workers;
}
// This worker's share of the run's rate: its connections' share, so the workers' shares sum to
// the run's rate exactly.
inline double OwnRate(const LoadConfig& config) {
  return config.rate * OwnConnections(config) / config.connections;
}
// Requests connection `c` may send: --requests shared out exactly over the run's connections (the
// first take one more), or no limit but the time.
std::uint64_t ConnectionQuota(const LoadConfig& config, unsigned c);
// The seeds of connection `c`'s requests (their commands, keys and values) and of its arrivals.
std::uint64_t ConnectionSeed(const LoadConfig& config, unsigned c);
std::uint64_t ArrivalSeed(const LoadConfig& config, unsigned c);

// The system clock, ns since the Unix epoch: what --start-at is given in.
std::int64_t UnixNowNs();
// When the workers start, on this process's steady clock (NowNs): --start-at, or a moment from
// now. Throws std::runtime_error when --start-at has passed: this worker would run short.
std::int64_t StartNs(const LoadConfig& config);

// This process's CPU time (user + system) so far.
double ProcessCpuSeconds();

// Runs the workers, each on a thread of its own, and merges what they measured. A Worker has
// `connections` (each with SetSchedule), Run(start_ns), a ThreadLedger `ledger` and its
// SpinWindow `spin`; own connection i (RunConnection) is the (i / threads)-th of worker
// i % threads.
template <typename Worker>
RunTotals RunWorkers(const LoadConfig& config, std::vector<std::unique_ptr<Worker>>& workers) {
  const auto threads = static_cast<unsigned>(workers.size());
  const std::int64_t start_ns = StartNs(config);
  if (config.rate > 0) {
    const double connection_rate = config.rate / config.connections;
    for (unsigned own = 0; own < OwnConnections(config); ++own) {
      // Uniform phases interleave the run's connections evenly over one interval, whichever
      // worker holds each.
      const unsigned c = RunConnection(config, own);
      workers[own % threads]->connections[own / threads]->SetSchedule(
          Schedule(start_ns, connection_rate, static_cast<double>(c) / config.connections,
                   config.arrival, ArrivalSeed(config, c)));
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
    run.merged.MergeTotals(worker->ledger.stats);
    if (config.rate > 0 && !config.busy_poll && worker->spin.enabled())
      run.spin_window_ns = std::max(run.spin_window_ns, worker->spin.ns());
  }
  return run;
}

}  // namespace switchyard::loadgen
