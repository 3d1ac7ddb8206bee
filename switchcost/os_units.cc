#include "switchcost/os_units.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace switchyard::switchcost {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

enum class Kind { kProcess, kThread };
enum class Method { kFutex, kPipe };
enum Side : std::uint32_t { kSideA = 0, kSideB = 1 };

const char* Name(Kind kind) { return kind == Kind::kProcess ? "process" : "thread"; }
const char* Name(Method method) { return method == Method::kFutex ? "futex" : "pipe"; }

// A word in a MAP_SHARED page and two pipes: whichever the method, the way side A hands the CPU
// to side B and back. Both sides must block in the kernel to wait, so on one CPU every hand-over
// is one context switch, as in `perf bench sched pipe` and lmbench's lat_ctx.
class Channel {
 public:
  Channel(Method method, bool between_processes)
      : method_(method), futex_flags_(between_processes ? 0 : FUTEX_PRIVATE_FLAG) {
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) ThrowErrno("mmap");
    turn_ = new (page) std::atomic<std::uint32_t>(kSideA);
    side_b_cpu_seconds_ = new (static_cast<char*>(page) + 64) double(0);
    if (pipe2(a_to_b_, O_CLOEXEC) != 0 || pipe2(b_to_a_, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  }
  ~Channel() {
    munmap(turn_, 4096);
    for (int fd : {a_to_b_[0], a_to_b_[1], b_to_a_[0], b_to_a_[1]}) {
      if (fd >= 0) close(fd);
    }
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // After fork, each process closes the pipe ends it does not use, so that a side that dies is
  // seen by the other as end of file rather than as a wait that never ends.
  void KeepEndsOf(Side me) {
    int& unused_read = me == kSideA ? a_to_b_[0] : b_to_a_[0];
    int& unused_write = me == kSideA ? b_to_a_[1] : a_to_b_[1];
    close(unused_read);
    close(unused_write);
    unused_read = unused_write = -1;
  }

  // Side A gave up (an error): closes its sending end, so a side B thread blocked in read() sees
  // end of file; a futex waiter gives up by its timeout.
  void Abandon() {
    close(a_to_b_[1]);
    a_to_b_[1] = -1;
  }

  // Where side B leaves the CPU time of its timed round trips (in the shared page, so a child
  // process can report it too); read after B has been joined or waited for.
  double& side_b_cpu_seconds() { return *side_b_cpu_seconds_; }

  // Gives the turn to `to` and wakes it.
  void Send(Side to) {
    if (method_ == Method::kPipe) {
      const int token = 1;  // 4 bytes, as perf bench sched pipe writes
      if (write(to == kSideB ? a_to_b_[1] : b_to_a_[1], &token, sizeof token) != sizeof token) {
        ThrowErrno("pipe write");
      }
      return;
    }
    turn_->store(to, std::memory_order_release);
    Futex(FUTEX_WAKE, 1, nullptr);
  }

  // Blocks until the turn is `me`'s.
  void Wait(Side me) {
    if (method_ == Method::kPipe) {
      int token = 0;
      const ssize_t got = read(me == kSideB ? a_to_b_[0] : b_to_a_[0], &token, sizeof token);
      if (got != sizeof token) {
        if (got == 0) throw std::runtime_error("the other side of the pipe went away");
        ThrowErrno("pipe read");
      }
      return;
    }
    // A timeout rather than an endless wait, so that a peer that died is reported.
    const timespec timeout{10, 0};
    for (std::uint32_t seen; (seen = turn_->load(std::memory_order_acquire)) != me;) {
      if (Futex(FUTEX_WAIT, seen, &timeout) != 0 && errno == ETIMEDOUT) {
        throw std::runtime_error("the other side stopped answering for 10 s");
      }
    }
  }

 private:
  long Futex(int op, std::uint32_t value, const timespec* timeout) {
    return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(turn_), op | futex_flags_, value,
                   timeout, nullptr, 0);
  }

  Method method_;
  int futex_flags_;
  std::atomic<std::uint32_t>* turn_ = nullptr;
  double* side_b_cpu_seconds_ = nullptr;
  int a_to_b_[2] = {-1, -1};
  int b_to_a_[2] = {-1, -1};
};

// A working set one side touches between switches: one write per cache line, so each pass
// brings every line (and its TLB entry) back if the other side evicted it.
class WorkingSet {
 public:
  explicit WorkingSet(std::size_t bytes) : bytes_(bytes), data_(new std::uint8_t[bytes + 1]()) {}
  void Touch() {
    for (std::size_t i = 0; i < bytes_; i += 64) data_[i]++;
    // The compiler may not drop the writes: the memory is read through an opaque asm.
    asm volatile("" : : "r"(data_.get()) : "memory");
  }

 private:
  std::size_t bytes_;
  std::unique_ptr<std::uint8_t[]> data_;
};

// The switch alone: nothing between switches.
std::function<void()> NoPass() {
  return [] {};
}

// A pass over a working set of `bytes`, allocated by the side that touches it.
PassMaker WorkingSetPass(std::size_t bytes) {
  return [bytes] {
    auto memory = std::make_shared<WorkingSet>(bytes);
    return std::function<void()>([memory] { memory->Touch(); });
  };
}

// Runs side B in a child process or a thread, side A here, pinned as asked, and returns the
// seconds that `round_trips` round trips took after a warm-up. Each round trip is two switches:
// A to B and B to A. On one CPU that is the CPU time of both sides: the pair alone on a CPU keeps
// it busy, so their CPU time is the wall time of the loop minus whatever else the machine ran on
// that CPU meanwhile. Across two CPUs it is the wall time, since waiting for a wake-up on the
// other CPU is the cost there.
double TimePingPong(Kind kind, Method method, int cpu_a, int cpu_b, const PassMaker& make_pass,
                    std::uint64_t round_trips) {
  constexpr std::uint64_t kWarmUp = 50;
  Channel channel(method, kind == Kind::kProcess);
  // Returns false if it failed (the other side went away, or a system call failed).
  auto side_b = [&]() noexcept {
    try {
      PinTo(cpu_b);
      const std::function<void()> pass = make_pass();
      auto round_trip = [&] {
        channel.Wait(kSideB);
        pass();
        channel.Send(kSideA);
      };
      for (std::uint64_t i = 0; i < kWarmUp; ++i) round_trip();
      const ThreadCpuTimer timer;
      for (std::uint64_t i = 0; i < round_trips; ++i) round_trip();
      channel.side_b_cpu_seconds() = timer.Seconds();
      return true;
    } catch (...) {
      return false;
    }
  };

  PinCurrentThread pin({cpu_a});
  pid_t child = -1;
  bool thread_ok = false;
  std::thread thread;
  if (kind == Kind::kProcess) {
    child = fork();
    if (child < 0) ThrowErrno("fork");
    if (child == 0) {
      channel.KeepEndsOf(kSideB);
      _exit(side_b() ? 0 : 1);
    }
    channel.KeepEndsOf(kSideA);
  } else {
    thread = std::thread([&] { thread_ok = side_b(); });
  }

  const std::function<void()> pass = make_pass();
  double wall_seconds = 0, side_a_cpu_seconds = 0;
  try {
    for (std::uint64_t i = 0; i < kWarmUp; ++i) {
      channel.Send(kSideB);
      channel.Wait(kSideA);
      pass();
    }
    const ThreadCpuTimer timer;
    const auto start = Clock::now();
    for (std::uint64_t i = 0; i < round_trips; ++i) {
      channel.Send(kSideB);
      channel.Wait(kSideA);
      pass();
    }
    wall_seconds = SecondsSince(start);
    side_a_cpu_seconds = timer.Seconds();
  } catch (...) {
    if (child > 0) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
    }
    if (thread.joinable()) {
      channel.Abandon();
      thread.join();  // side B gives up at end of file or after its 10 s futex timeout
    }
    throw;
  }
  if (thread.joinable()) {
    thread.join();
    if (!thread_ok) throw std::runtime_error("the ping-pong thread failed");
  }
  if (child > 0) {
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("the ping-pong child process failed");
    }
  }
  return cpu_a == cpu_b ? side_a_cpu_seconds + channel.side_b_cpu_seconds() : wall_seconds;
}

std::string Kib(std::size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  return std::to_string(bytes >> 10) + "KiB";
}

}  // namespace

std::vector<Figure> MeasureOsSwitches(const Budget& budget) {
  const std::vector<int> cpus = AllowedCpus();
  std::vector<Figure> figures;
  for (Kind kind : {Kind::kProcess, Kind::kThread}) {
    for (Method method : {Method::kFutex, Method::kPipe}) {
      for (bool one_cpu : {true, false}) {
        if (!one_cpu && cpus.size() < 2) continue;  // said in the report's notes
        const int cpu_a = cpus[0];
        const int cpu_b = one_cpu ? cpus[0] : cpus[1];
        const Stats stats = MeasureNs(budget, 2, [&](std::uint64_t n) {
          return TimePingPong(kind, method, cpu_a, cpu_b, NoPass, n);
        });
        std::string note =
            one_cpu ? "round trip / 2 in CPU time of both sides; the " + std::string(Name(method)) +
                          " calls that cause the switch are included"
                    : "round trip / 2 between CPU " + std::to_string(cpu_a) + " and CPU " +
                          std::to_string(cpu_b) + ": a cross-CPU wake-up, not a switch on one CPU";
        figures.push_back({Name(kind), "switch", Name(method), one_cpu, stats.median, "ns",
                           stats.spread, stats.runs, note});
      }
    }
  }
  return figures;
}

std::vector<Figure> MeasureOsIndirect(const Budget& budget,
                                      const std::vector<std::size_t>& working_set_bytes) {
  const int cpu = AllowedCpus()[0];
  std::vector<Figure> figures;
  for (std::size_t bytes : working_set_bytes) {
    // What one side's pass over its working set costs with no switch in between: the switch
    // with refill is the round trip's share minus this (Li, Ding and Shen's method).
    PinCurrentThread pin({cpu});
    WorkingSet alone(bytes);
    const Stats pass = MeasureNs(budget, 1, [&](std::uint64_t n) {
      const ThreadCpuTimer timer;
      for (std::uint64_t i = 0; i < n; ++i) alone.Touch();
      return timer.Seconds();
    });
    for (Kind kind : {Kind::kProcess, Kind::kThread}) {
      const Stats trip = MeasureNs(budget, 2, [&](std::uint64_t n) {
        return TimePingPong(kind, Method::kFutex, cpu, cpu, WorkingSetPass(bytes), n);
      });
      // The figure is what was measured: one switch plus one pass. The difference from the pass
      // alone is given in the note, not as the figure: it is the difference of two noisy
      // measurements, and on a busy machine (whose other processes also evict the cache) it can
      // come out below zero.
      char note[200];
      std::snprintf(note, sizeof note,
                    "futex switch + one pass over %s per side; the pass alone takes %.0f ns, so "
                    "the switch with refill costs %.0f ns",
                    Kib(bytes).c_str(), pass.median, trip.median - pass.median);
      figures.push_back({Name(kind), "switch", "futex+ws" + Kib(bytes), true, trip.median, "ns",
                         trip.spread, trip.runs, note});
    }
  }
  return figures;
}

double TimePinnedFutexPingPong(bool processes, int cpu, const PassMaker& make_pass,
                               std::uint64_t round_trips) {
  return TimePingPong(processes ? Kind::kProcess : Kind::kThread, Method::kFutex, cpu, cpu,
                      make_pass, round_trips);
}

std::vector<Figure> MeasureOsCreation(const Budget& budget) {
  std::vector<Figure> figures;
  const Stats fork_stats = MeasureNs(budget, 1, [](std::uint64_t n) {
    const double start = ProcessTreeCpuSeconds();
    for (std::uint64_t i = 0; i < n; ++i) {
      const pid_t child = fork();
      if (child < 0) ThrowErrno("fork");
      if (child == 0) _exit(0);
      int status = 0;
      if (waitpid(child, &status, 0) != child) ThrowErrno("waitpid");
    }
    return ProcessTreeCpuSeconds() - start;
  });
  figures.push_back({"process", "create", "fork+exit+wait", false, fork_stats.median, "ns",
                     fork_stats.spread, fork_stats.runs,
                     "fork of this process (PSS " + std::to_string(PssBytes() >> 20) +
                         " MiB: fork copies its page tables), child _exit(0), parent waitpid; CPU "
                         "time of parent and child"});

  const Stats thread_stats = MeasureNs(budget, 1, [](std::uint64_t n) {
    const double start = ProcessTreeCpuSeconds();
    for (std::uint64_t i = 0; i < n; ++i) {
      pthread_t thread;
      const int error = pthread_create(
          &thread, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
      if (error != 0) throw std::system_error(error, std::generic_category(), "pthread_create");
      pthread_join(thread, nullptr);
    }
    return ProcessTreeCpuSeconds() - start;
  });
  figures.push_back(
      {"thread", "create", "pthread_create+join", false, thread_stats.median, "ns",
       thread_stats.spread, thread_stats.runs,
       "default attributes; glibc reuses the joined thread's stack; CPU time of both threads"});
  return figures;
}

std::vector<double> RunInChild(const std::function<std::vector<double>()>& measure) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  const pid_t child = fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) {
    close(fds[0]);
    int status = 0;
    try {
      const std::vector<double> values = measure();
      const auto bytes = static_cast<ssize_t>(values.size() * sizeof(double));
      if (write(fds[1], values.data(), values.size() * sizeof(double)) != bytes) status = 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "switchcost: %s\n", e.what());
      status = 1;
    }
    _exit(status);
  }
  close(fds[1]);
  std::vector<double> values;
  double value;
  while (read(fds[0], &value, sizeof value) == sizeof value) values.push_back(value);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("a memory measurement failed in its child process");
  }
  return values;
}

namespace {

// With `count` children alive, each blocked in read() after touching what a started process
// touches: per child, the growth of PSS (this process and every child), of page tables (VmPTE of
// each) and of kernel stacks (system-wide).
std::vector<double> ProcessMemory(int count) {
  const double pss_before = static_cast<double>(PssBytes());
  const double pte_before = static_cast<double>(PageTableBytes());
  const double stack_before = static_cast<double>(KernelStackBytes());
  int ready[2], release[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(release, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  std::vector<pid_t> children;
  auto reap = [&] {
    close(release[1]);  // every child's read() returns 0 and it exits
    for (pid_t child : children) waitpid(child, nullptr, 0);
  };
  for (int i = 0; i < count; ++i) {
    const pid_t child = fork();
    if (child < 0) {
      const int error = errno;
      reap();
      throw std::system_error(error, std::generic_category(),
                              "fork of process " + std::to_string(i + 1));
    }
    if (child == 0) {
      close(release[1]);
      const char byte = 1;
      if (write(ready[1], &byte, 1) != 1) _exit(1);
      char ignored;
      while (read(release[0], &ignored, 1) > 0) {
      }
      _exit(0);
    }
    children.push_back(child);
  }
  close(ready[1]);
  char byte;
  for (int i = 0; i < count; ++i) {
    if (read(ready[0], &byte, 1) != 1) break;
  }
  double pss_after = static_cast<double>(PssBytes());
  double pte_after = static_cast<double>(PageTableBytes());
  for (pid_t child : children) {
    pss_after += static_cast<double>(PssBytes(std::to_string(child)));
    pte_after += static_cast<double>(PageTableBytes(std::to_string(child)));
  }
  const double stack_after = static_cast<double>(KernelStackBytes());
  reap();
  close(ready[0]);
  close(release[0]);
  return {(pss_after - pss_before) / count, (pte_after - pte_before) / count,
          (stack_after - stack_before) / count};
}

// With `count` threads alive, each blocked on a latch: per thread, the growth of this process's
// PSS and page tables, and of kernel stacks (system-wide).
std::vector<double> ThreadMemory(int count, std::size_t stack_bytes) {
  const double pss_before = static_cast<double>(PssBytes());
  const double pte_before = static_cast<double>(PageTableBytes());
  const double stack_before = static_cast<double>(KernelStackBytes());
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (stack_bytes != 0) pthread_attr_setstacksize(&attr, stack_bytes);
  std::latch started(count);
  std::latch release(1);
  struct Shared {
    std::latch* started;
    std::latch* release;
  } shared{&started, &release};
  std::vector<pthread_t> threads;
  for (int i = 0; i < count; ++i) {
    pthread_t thread;
    const int error = pthread_create(
        &thread, &attr,
        [](void* arg) -> void* {
          auto* s = static_cast<Shared*>(arg);
          s->started->count_down();
          s->release->wait();
          return nullptr;
        },
        &shared);
    if (error != 0) {
      release.count_down();
      for (pthread_t t : threads) pthread_join(t, nullptr);
      throw std::system_error(error, std::generic_category(),
                              "pthread_create of thread " + std::to_string(i + 1));
    }
    threads.push_back(thread);
  }
  started.wait();
  const double pss_after = static_cast<double>(PssBytes());
  const double pte_after = static_cast<double>(PageTableBytes());
  const double stack_after = static_cast<double>(KernelStackBytes());
  release.count_down();
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  return {(pss_after - pss_before) / count, (pte_after - pte_before) / count,
          (stack_after - stack_before) / count};
}

// Adds the PSS, page-table and kernel-stack figures of `runs` runs of `one_run` (which returns
// those three per unit).
void AddMemoryFigures(std::vector<Figure>& figures, const std::string& unit,
                      const std::string& method_prefix, int count, int runs,
                      const std::string& note,
                      const std::function<std::vector<double>()>& one_run) {
  std::vector<double> samples[3];
  for (int run = 0; run < runs; ++run) {
    const std::vector<double> values = RunInChild(one_run);
    if (values.size() != 3) throw std::runtime_error("a memory measurement returned no figures");
    for (int i = 0; i < 3; ++i) samples[i].push_back(values[i]);
  }
  const std::string alive = std::to_string(count) + " alive";
  const char* const names[3] = {"pss", "pagetables", "kernelstack"};
  const std::string notes[3] = {"PSS per unit, " + alive + note,
                                "page tables (VmPTE) per unit, " + alive,
                                "KernelStack growth in /proc/meminfo per unit, " + alive +
                                    " (system-wide: other activity adds noise)"};
  for (int i = 0; i < 3; ++i) {
    const Stats stats = Summarize(samples[i]);
    figures.push_back({unit, "memory", method_prefix + names[i] + "@" + std::to_string(count),
                       false, stats.median, "bytes", stats.spread, stats.runs, notes[i]});
  }
}

}  // namespace

std::vector<Figure> MeasureOsMemory(const std::vector<int>& alive, int runs) {
  std::vector<Figure> figures;
  for (int count : alive) {
    AddMemoryFigures(figures, "process", "", count, runs, "; forked children blocked in read()",
                     [count] { return ProcessMemory(count); });
  }
  for (int count : alive) {
    AddMemoryFigures(figures, "thread", "stack-default/", count, runs,
                     "; default stack (ulimit -s), blocked on a latch",
                     [count] { return ThreadMemory(count, 0); });
    AddMemoryFigures(figures, "thread", "stack-64KiB/", count, runs,
                     "; 64 KiB stack, blocked on a latch",
                     [count] { return ThreadMemory(count, 64 << 10); });
  }
  return figures;
}

}  // namespace switchyard::switchcost
