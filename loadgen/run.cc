// The run's checks and shares (run.h); RunWorkers itself is a template in the header.
#include "loadgen/run.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace switchyard::loadgen {

unsigned PrepareRun(const LoadConfig& config) {
  if (config.connections == 0 || config.threads == 0 || config.pipeline == 0) {
    throw std::invalid_argument("--connections, --threads and --pipeline must be at least 1");
  }
  if (config.rate < 0) throw std::invalid_argument("--rate must not be negative");
  if (config.workers == 0 || config.worker_index >= config.workers) {
    throw std::invalid_argument("--worker-index must be below --workers (it counts from 0)");
  }
  if (config.connections < config.workers) {
    throw std::invalid_argument("--connections (" + std::to_string(config.connections) +
                                ", the run's total) must be at least --workers (" +
                                std::to_string(config.workers) + "): one a worker at least");
  }
  // Thousands of connections need thousands of descriptors: raise the soft limit to the hard one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return std::min(config.threads, OwnConnections(config));
}

unsigned OwnConnections(const LoadConfig& config) {
  if (config.worker_index >= config.connections) return 0;
  return (config.connections - config.worker_index + config.workers - 1) / config.workers;
}

Workload MakeWorkload(const LoadConfig& config) {
  return Workload(ParseMix(config.mix), config.keys, config.key_dist,
                  ParseSizeRange(config.value_size));
}

std::uint64_t ConnectionQuota(const LoadConfig& config, unsigned c) {
  if (config.requests == 0) return UINT64_MAX;
  return config.requests / config.connections + (c < config.requests % config.connections ? 1 : 0);
}

std::uint64_t ConnectionSeed(const LoadConfig& config, unsigned c) {
  return Random(config.seed + c).Next();
}

std::uint64_t ArrivalSeed(const LoadConfig& config, unsigned c) {
  return Random(~config.seed - c).Next();
}

std::int64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t StartNs(const LoadConfig& config) {
  // A moment ahead, so that every thread is waiting when the clock starts.
  if (config.start_at_unix_ns == 0) return NowNs() + 20'000'000;
  const std::int64_t ahead = config.start_at_unix_ns - UnixNowNs();
  if (ahead <= 0) {
    char late[128];
    std::snprintf(late, sizeof late, "%.3f s late", static_cast<double>(-ahead) / 1e9);
    throw std::runtime_error("worker " + std::to_string(config.worker_index) + " of " +
                             std::to_string(config.workers) + " is " + late +
                             " for --start-at: it would run short of its share, so it does not "
                             "run (start the workers earlier, or give a later --start-at)");
  }
  return NowNs() + ahead;
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace switchyard::loadgen
