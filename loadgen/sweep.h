// The sweep to the knee: the highest open-loop rate at which a server still meets a latency
// objective (for example p99 <= 1 ms), found from the server's own figures, not the load
// generator's bad moments.
//
// The rates climb in steps of a fraction of the closed-loop peak until one misses; the knee is then
// refined by bisection between the highest rate that met the objective and the lowest that missed.
// A run in which the load generator was the limit says nothing about the server: it is run again
// (a bounded number of times) and never read as a miss; a rate that stays limited ends the sweep
// with the knee reported as "at least" the highest rate that met. Steps that decide the knee (a
// miss, the last rate that met, every bisection step) are run several times when asked and the
// majority of their runs decides (the median's verdict), so one noisy run cannot move the knee by
// a whole step; a step stops early once its majority is settled, and the knee's rate runs them
// all, for the spread reported beside it.
#pragma once

#include <functional>
#include <string>

#include "proto/loadgen.pb.h"

namespace switchyard::loadgen {

struct SweepPlan {
  double percentile = 99;      // the objective: this percentile ...
  double slo_seconds = 1e-3;   // ... at most this latency
  unsigned steps = 10;         // the climb: peak/steps, 2 peak/steps, ... up to the peak
  unsigned runs_per_step = 1;  // runs of each deciding step; the median decides
  // Extra runs a step may take when the load generator was the limit for a moment (its schedule
  // lagged); none when it was out of CPU at that rate (client_busy_fraction), as a rerun would be.
  unsigned retries = 2;
  double precision = 0.05;    // bisection stops once the knee is known within this share of peak
  unsigned max_halvings = 4;  // below a first step that missed: halve the rate at most this often
};

// Runs the server at `rate` requests per second for one step and returns the result.
using RunAtRate = std::function<pb::LoadResult(double rate)>;
// Told of each run as it ends: `verdict` is "met", "missed" or "client-limited" for that run alone.
using OnRun = std::function<void(const pb::LoadResult& run, const std::string& verdict)>;
// Asked before each run; true stops the sweep (Ctrl-C), which then reports what it has.
using ShouldStop = std::function<bool()>;

// Sweeps from `peak` (the closed-loop throughput measured first). The result holds every run in
// rising order of rate (`steps`), each decision with its runs' figures (`decisions`), and the
// knee with its interval.
pb::SweepResult Sweep(const SweepPlan& plan, double peak, const RunAtRate& run,
                      const OnRun& on_run = nullptr, const ShouldStop& should_stop = nullptr);

// The latency at the objective's percentile of one run, in seconds, from its histogram.
double ObservedAtObjective(const pb::LoadResult& run, double percentile);

}  // namespace switchyard::loadgen
