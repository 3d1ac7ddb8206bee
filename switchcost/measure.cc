#include "switchcost/measure.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace switchyard::switchcost {

Stats Summarize(std::vector<double> samples) {
  if (samples.empty()) throw std::logic_error("Summarize: no samples");
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  const double median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  return Stats{median, (samples.back() - samples.front()) / 2, static_cast<int>(n)};
}

Stats MeasureNs(const Budget& budget, double ops_per_iteration,
                const std::function<double(std::uint64_t n)>& timed_run) {
  // Calibrate: double n until one run is long enough that the clock reads and the loop's start
  // are lost in it, then aim at the budget. Every calibration run also warms caches and the
  // branch predictor for the runs that count.
  std::uint64_t n = 8;
  double seconds = timed_run(n);
  while (seconds < budget.seconds_per_run / 2 && n < (std::uint64_t{1} << 40)) {
    n *= 2;
    seconds = timed_run(n);
  }
  n = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(static_cast<double>(n) * budget.seconds_per_run /
                                    std::max(seconds, 1e-9)));
  std::vector<double> ns_per_op;
  for (int run = 0; run < budget.runs; ++run) {
    ns_per_op.push_back(timed_run(n) * 1e9 / (static_cast<double>(n) * ops_per_iteration));
  }
  return Summarize(std::move(ns_per_op));
}

double ProcessTreeCpuSeconds() {
  double seconds = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage usage{};
    getrusage(who, &usage);
    for (const timeval& tv : {usage.ru_utime, usage.ru_stime}) {
      seconds += static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    }
  }
  return seconds;
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

namespace {
void SetAffinity(const cpu_set_t& set) {
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    throw std::system_error(errno, std::generic_category(), "sched_setaffinity");
  }
}
}  // namespace

PinCurrentThread::PinCurrentThread(const std::vector<int>& cpus) {
  CPU_ZERO(&previous_);
  sched_getaffinity(0, sizeof previous_, &previous_);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  SetAffinity(set);
}

PinCurrentThread::~PinCurrentThread() { sched_setaffinity(0, sizeof previous_, &previous_); }

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  SetAffinity(set);
}

std::uint64_t ReadKbField(const std::string& path, const std::string& key) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::string word;
  while (file >> word) {
    if (word == key) {
      std::uint64_t kb = 0;
      file >> kb;
      return kb * 1024;
    }
    file.ignore(1 << 16, '\n');
  }
  throw std::runtime_error("no " + key + " in " + path);
}

std::uint64_t PssBytes(const std::string& pid) {
  return ReadKbField("/proc/" + pid + "/smaps_rollup", "Pss:");
}

std::uint64_t PageTableBytes(const std::string& pid) {
  return ReadKbField("/proc/" + pid + "/status", "VmPTE:");
}

std::uint64_t KernelStackBytes() { return ReadKbField("/proc/meminfo", "KernelStack:"); }

std::string FormatNs(double ns) {
  char text[32];
  const double magnitude = std::fabs(ns);
  if (magnitude < 10) {
    std::snprintf(text, sizeof text, "%.3g ns", ns);
  } else if (magnitude < 1000) {
    std::snprintf(text, sizeof text, "%.0f ns", ns);
  } else if (magnitude < 1e6) {
    std::snprintf(text, sizeof text, "%.3g µs", ns / 1e3);
  } else if (magnitude < 1e9) {
    std::snprintf(text, sizeof text, "%.3g ms", ns / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.3g s", ns / 1e9);
  }
  return text;
}

std::string FormatBytes(double bytes) {
  char text[32];
  const double magnitude = std::fabs(bytes);
  if (magnitude < 1024) {
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  } else if (magnitude < 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.3g KiB", bytes / 1024);
  } else if (magnitude < 1024.0 * 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.3g MiB", bytes / (1024 * 1024));
  } else {
    std::snprintf(text, sizeof text, "%.3g GiB", bytes / (1024.0 * 1024 * 1024));
  }
  return text;
}

std::string Pad(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return text + std::string(width > columns ? width - columns : 1, ' ');
}

}  // namespace switchyard::switchcost
