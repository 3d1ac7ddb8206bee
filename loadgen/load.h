// The load generator's front: what one run is asked to do (LoadConfig), the Ctrl-C flag every
// part honours, and RunLoad, which hands the run to the transport its protocol names. The parts
// behind it: the run's shape and its books, shared by both transports (run.h, ledger.h), the
// result (result.h), and one transport a protocol (resp_transport.h, grpc_transport.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "loadgen/workload.h"
#include "proto/loadgen.pb.h"

namespace switchyard::loadgen {

struct LoadConfig {
  std::string protocol = "resp";  // or "grpc": proto/kv.proto calls (grpc_transport.h)
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

  // One run split over several load-generator processes, on one machine or many (`--workers`):
  // connection c of the run's `connections` belongs to worker c % workers, with the schedule,
  // quota and seed it would have in one process, so the workers' parts add up to exactly the run
  // one process would have made: the rate and --requests lose no remainder.
  unsigned workers = 1;
  unsigned worker_index = 0;
  // When every worker begins its warm-up, on the system clock (ns since the Unix epoch); 0: as
  // soon as this process has connected. A worker that is not ready by then fails rather than run
  // a short part.
  std::int64_t start_at_unix_ns = 0;
  std::uint64_t seed = 0;  // every connection's streams derive from it and its index in the run
  std::string run_id;      // what ties the workers' results together for `load merge`
};

struct LiveStats;  // ledger.h: what the threads publish while the run goes on

// Set from a signal handler: stop sending, collect the replies owed, report what was measured.
extern std::atomic<bool> g_stop_requested;

// Runs one load with the transport config.protocol names and returns its result (spec, figures
// and histograms filled). `live` may be null. Throws std::invalid_argument for counts it cannot
// run and std::runtime_error with a one-line message when the target cannot be reached.
pb::LoadResult RunLoad(const LoadConfig& config, LiveStats* live);

}  // namespace switchyard::loadgen
