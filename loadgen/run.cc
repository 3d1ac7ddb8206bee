// The run's checks and shares (run.h); RunWorkers itself is a template in the header.
#include "loadgen/run.h"

#include <sys/resource.h>

#include <stdexcept>

namespace switchyard::loadgen {

unsigned PrepareRun(const LoadConfig& config) {
  if (config.connections == 0 || config.threads == 0 || config.pipeline == 0) {
    throw std::invalid_argument("--connections, --threads and --pipeline must be at least 1");
  }
  if (config.rate < 0) throw std::invalid_argument("--rate must not be negative");
  // Thousands of connections need thousands of descriptors: raise the soft limit to the hard one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return std::min(config.threads, config.connections);
}

Workload MakeWorkload(const LoadConfig& config) {
  return Workload(ParseMix(config.mix), config.keys, config.key_dist,
                  ParseSizeRange(config.value_size));
}

std::uint64_t ConnectionQuota(const LoadConfig& config, unsigned c) {
  if (config.requests == 0) return UINT64_MAX;
  return config.requests / config.connections + (c < config.requests % config.connections ? 1 : 0);
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace switchyard::loadgen
