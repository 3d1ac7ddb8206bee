// The repeated-median harness every switchcost figure goes through, the record of one figure, and
// the helpers the harnesses share (CPU pinning, a monotonic clock, /proc readers).
#pragma once

#include <sched.h>
#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace switchyard::switchcost {

// One row of the results: one figure of one unit, as the --json schema names them.
struct Figure {
  std::string unit;           // process, thread, fiber, ucontext, coroutine, call, syscall
  std::string operation;      // switch, create, memory
  std::string method;         // pipe, futex, fcontext, swapcontext, symmetric-transfer, pss, ...
  bool pinned = false;        // both sides on one CPU (switch), or the creator pinned (create)
  double value = 0;           // median of the runs
  std::string unit_of_value;  // ns or bytes
  double spread = 0;          // half the range (max - min) / 2 of the runs, in unit_of_value
  int runs = 0;               // how many repeated runs the median is taken over
  std::string note;           // what a reader needs to read the figure (shown in the table)
};

struct Stats {
  double median = 0;
  double spread = 0;  // (max - min) / 2
  int runs = 0;
};

// Median and half-range of `samples` (not empty).
Stats Summarize(std::vector<double> samples);

// How long each timed run lasts and how many runs a figure is the median of.
struct Budget {
  double seconds_per_run = 0.05;
  int runs = 5;
};

// Times `timed_run(n)`, which performs n iterations and returns the seconds they took (so it can
// leave set-up and tear-down out of the timing). n is doubled from 8 until one run lasts half
// of budget.seconds_per_run, then scaled to the budget; then budget.runs runs are taken. Returns
// nanoseconds per operation, where one iteration is `ops_per_iteration` operations.
Stats MeasureNs(const Budget& budget, double ops_per_iteration,
                const std::function<double(std::uint64_t n)>& timed_run);

using Clock = std::chrono::steady_clock;
inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), user and system: what a loop that
// runs on one thread costs, without the time other processes held the CPU when they preempted it.
// Used for everything that runs on one thread; ping-pongs between two units use the wall clock.
class ThreadCpuTimer {
 public:
  ThreadCpuTimer() : start_(Now()) {}
  double Seconds() const { return Now() - start_; }

 private:
  static double Now() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
  }
  double start_;
};

// CPU time, user + system, of this whole process (every thread, including those that ended) and
// of its children that have been waited for (getrusage SELF + CHILDREN): what creating and
// ending a thread or a process costs the creator and the created, without the time other
// processes held the CPU.
double ProcessTreeCpuSeconds();

// CPUs this process may run on, in order (from sched_getaffinity).
std::vector<int> AllowedCpus();

// Pins the calling thread to `cpus` for its lifetime, restoring the previous mask on
// destruction (so the harness's own thread is never left pinned).
class PinCurrentThread {
 public:
  explicit PinCurrentThread(const std::vector<int>& cpus);
  ~PinCurrentThread();
  PinCurrentThread(const PinCurrentThread&) = delete;
  PinCurrentThread& operator=(const PinCurrentThread&) = delete;

 private:
  cpu_set_t previous_;
};
// Pins the calling thread (or a fresh child process) to one CPU for good; -1 leaves it free.
void PinTo(int cpu);

// The number after `key` in a "Key:   123 kB" file (/proc/meminfo, smaps_rollup, status), in
// bytes; throws if the file or the key is missing.
std::uint64_t ReadKbField(const std::string& path, const std::string& key);
// The "Pss:" line of /proc/PID/smaps_rollup ("self" for this process), in bytes.
std::uint64_t PssBytes(const std::string& pid = "self");
// The "VmPTE:" line of /proc/PID/status: this process's page tables, in bytes.
std::uint64_t PageTableBytes(const std::string& pid = "self");
// KernelStack from /proc/meminfo, in bytes: system-wide, the only place kernel stacks are counted,
// so other activity on the machine adds noise to its differences.
std::uint64_t KernelStackBytes();

// How every table and answer writes a figure, three significant digits: "843 ns", "2.61 µs",
// "1.20 ms"; "512 B", "59.5 KiB", "1.5 MiB".
std::string FormatNs(double ns);
std::string FormatBytes(double bytes);
// Pads `text` to `width` columns, counting UTF-8 code points (µ, ±) as one column each.
std::string Pad(const std::string& text, std::size_t width);

}  // namespace switchyard::switchcost
