#include "switchcost/tlb_units.h"

#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "switchcost/os_units.h"

namespace switchyard::switchcost {
namespace {

// x86-64's base page: every touched page needs a TLB entry of its own, since huge pages are
// refused for the buffer (MADV_NOHUGEPAGE).
constexpr std::size_t kPageBytes = 4096;
// One page and one cache line apart: successive touches fall in different pages and in different
// cache sets, so N touches use N lines (N * 64 bytes of cache), spread over the sets, and the
// TLB's reach, not the cache's size, decides what a pass costs.
constexpr std::size_t kStrideBytes = kPageBytes + 64;

constexpr std::uint64_t kDtlbLoadMisses = PERF_COUNT_HW_CACHE_DTLB |
                                          (PERF_COUNT_HW_CACHE_OP_READ << 8) |
                                          (PERF_COUNT_HW_CACHE_RESULT_MISS << 16);
constexpr std::uint64_t kItlbLoadMisses = PERF_COUNT_HW_CACHE_ITLB |
                                          (PERF_COUNT_HW_CACHE_OP_READ << 8) |
                                          (PERF_COUNT_HW_CACHE_RESULT_MISS << 16);

// One byte in each of `pages` distinct pages of a buffer of its own, touched once a pass.
class PageSet {
 public:
  explicit PageSet(int pages)
      : pages_(pages),
        bytes_((static_cast<std::size_t>(pages) * kStrideBytes + kPageBytes - 1) / kPageBytes *
               kPageBytes) {
    void* buffer =
        mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(),
                              "mmap of " + std::to_string(bytes_) + " bytes");
    }
    data_ = static_cast<std::uint8_t*>(buffer);
    // EINVAL: a kernel without transparent huge pages, where every page is a base page anyway.
    if (madvise(data_, bytes_, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
      const int error = errno;
      munmap(data_, bytes_);
      throw std::system_error(error, std::generic_category(), "madvise(MADV_NOHUGEPAGE)");
    }
    // Fault every page in now, so that no pass that counts takes a page fault.
    Touch();
  }
  ~PageSet() { munmap(data_, bytes_); }
  PageSet(const PageSet&) = delete;
  PageSet& operator=(const PageSet&) = delete;

  void Touch() {
    for (int page = 0; page < pages_; ++page)
      data_[static_cast<std::size_t>(page) * kStrideBytes]++;
    // The compiler may not drop the writes: the memory is read through an opaque asm.
    asm volatile("" : : "r"(data_) : "memory");
  }

 private:
  int pages_;
  std::size_t bytes_;
  std::uint8_t* data_ = nullptr;
};

long PerfEventOpen(perf_event_attr* attr) {
  // This thread only, on whichever CPU it runs.
  return syscall(SYS_perf_event_open, attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

// One hardware TLB miss counter on the calling thread, from its opening to its reading. It counts
// user and kernel mode where allowed, else user mode alone (perf_event_paranoid 2 allows only
// that to an unprivileged user).
class TlbCounter {
 public:
  explicit TlbCounter(std::uint64_t config) {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_HW_CACHE;
    attr.size = sizeof attr;
    attr.config = config;
    attr.exclude_hv = 1;
    // Multiplexed with other events, a counter runs part of the time: the reading is scaled.
    attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
    fd_ = static_cast<int>(PerfEventOpen(&attr));
    if (fd_ < 0 && (errno == EACCES || errno == EPERM)) {
      attr.exclude_kernel = 1;
      user_only_ = true;
      fd_ = static_cast<int>(PerfEventOpen(&attr));
    }
    if (fd_ < 0) error_ = std::string("perf_event_open: ") + std::strerror(errno);
  }
  ~TlbCounter() {
    if (fd_ >= 0) close(fd_);
  }
  TlbCounter(const TlbCounter&) = delete;
  TlbCounter& operator=(const TlbCounter&) = delete;

  bool ok() const { return fd_ >= 0; }
  const std::string& error() const { return error_; }
  bool user_only() const { return user_only_; }

  // Misses since the counter was opened, scaled for the time it was multiplexed out; -1 if it
  // cannot be read.
  double Read() const {
    struct {
      std::uint64_t value, enabled, running;
    } reading{};
    if (fd_ < 0 || read(fd_, &reading, sizeof reading) != sizeof reading) return -1;
    if (reading.running == 0) return reading.enabled == 0 ? 0 : -1;
    return static_cast<double>(reading.value) * static_cast<double>(reading.enabled) /
           static_cast<double>(reading.running);
  }

 private:
  int fd_ = -1;
  bool user_only_ = false;
  std::string error_;
};

// What counting the TLB misses of a ping-pong needs: both sides add their counts here, in a
// MAP_SHARED page so that a child process's counts arrive too.
class SharedTotals {
 public:
  SharedTotals() {
    void* page =
        mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    slots_ = new (page) Slots{};
  }
  ~SharedTotals() { munmap(slots_, kPageBytes); }
  SharedTotals(const SharedTotals&) = delete;
  SharedTotals& operator=(const SharedTotals&) = delete;

  void Clear() {
    slots_->dtlb.store(0);
    slots_->itlb.store(0);
    slots_->failed_errno.store(0);
  }
  // Counts are whole numbers of misses (rounded after scaling); -1 marks a side that failed.
  void Add(double dtlb, double itlb) {
    slots_->dtlb.fetch_add(dtlb < 0 ? 0 : static_cast<std::int64_t>(dtlb + 0.5));
    slots_->itlb.fetch_add(itlb < 0 ? 0 : static_cast<std::int64_t>(itlb + 0.5));
  }
  void Fail(int error) { slots_->failed_errno.store(error == 0 ? EIO : error); }
  std::int64_t dtlb() const { return slots_->dtlb.load(); }
  std::int64_t itlb() const { return slots_->itlb.load(); }
  int failed_errno() const { return slots_->failed_errno.load(); }

 private:
  struct Slots {
    std::atomic<std::int64_t> dtlb{0};
    std::atomic<std::int64_t> itlb{0};
    std::atomic<int> failed_errno{0};
  };
  static_assert(std::atomic<std::int64_t>::is_always_lock_free,
                "the counts are shared between processes");
  Slots* slots_ = nullptr;
};

// A side's pages, and (when `totals`) its TLB counters, opened once the pages are faulted in; on
// destruction, at the end of the side's ping-pong, the counts go to `totals`.
class CountedPages {
 public:
  CountedPages(int pages, SharedTotals* totals, bool count_itlb) : pages_(pages), totals_(totals) {
    if (totals_ == nullptr) return;
    dtlb_ = std::make_unique<TlbCounter>(kDtlbLoadMisses);
    if (count_itlb) itlb_ = std::make_unique<TlbCounter>(kItlbLoadMisses);
    if (!dtlb_->ok() || (itlb_ && !itlb_->ok())) totals_->Fail(errno);
  }
  ~CountedPages() {
    if (totals_ == nullptr || !dtlb_->ok()) return;
    const double dtlb = dtlb_->Read();
    const double itlb = itlb_ ? itlb_->Read() : 0;
    if (dtlb < 0 || itlb < 0) totals_->Fail(EIO);
    totals_->Add(dtlb, itlb);
  }
  CountedPages(const CountedPages&) = delete;
  CountedPages& operator=(const CountedPages&) = delete;

  void Touch() { pages_.Touch(); }

 private:
  PageSet pages_;
  SharedTotals* totals_;
  std::unique_ptr<TlbCounter> dtlb_, itlb_;
};

// Each side's pass: one touch in each of its own `pages` pages, built on that side (after the
// fork), counted into `totals` if given.
PassMaker PagePass(int pages, SharedTotals* totals = nullptr, bool count_itlb = false) {
  return [pages, totals, count_itlb] {
    auto side = std::make_shared<CountedPages>(pages, totals, count_itlb);
    return std::function<void()>([side] { side->Touch(); });
  };
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

// Whether the dTLB miss counter opens and counts here; `reason` says why not, or what it counts.
bool ProbeTlbCounters(std::string& reason) {
  const TlbCounter counter(kDtlbLoadMisses);
  if (!counter.ok()) {
    reason = counter.error();
    // A PMU the kernel drives appears as /sys/bus/event_source/devices/cpu (cpu_core, cpu_atom
    // on hybrid parts); without one, there are no hardware counters to open.
    std::ifstream cpu("/sys/bus/event_source/devices/cpu/type");
    std::ifstream core("/sys/bus/event_source/devices/cpu_core/type");
    if (!cpu && !core) reason += "; no hardware PMU in /sys/bus/event_source/devices";
    return false;
  }
  // Fresh pages, each touched twice: the first touch of each must walk the page table, so a
  // counter that reads zero after this does not count.
  constexpr int kProbePages = 1024;
  PageSet pages(kProbePages);
  pages.Touch();
  const double misses = counter.Read();
  if (misses <= 0) {
    reason = "the dTLB miss counter opens but reads " + std::string(misses < 0 ? "nothing" : "0") +
             " over " + std::to_string(kProbePages) + " fresh pages";
    return false;
  }
  reason = counter.user_only() ? "user mode only: /proc/sys/kernel/perf_event_paranoid is " +
                                     ReadFirstLine("/proc/sys/kernel/perf_event_paranoid") +
                                     ", so misses in the kernel are not counted"
                               : "user and kernel mode";
  return true;
}

// TLB misses per switch, both sides, of the ping-pong: counted over runs of n and 2n round trips,
// so that set-up and warm-up, in both, cancel in the difference. Returns {dTLB, iTLB} samples,
// or empty (with `error` set) if a side could not count.
std::vector<std::vector<double>> CountMissesPerSwitch(const Budget& budget, bool processes, int cpu,
                                                      int pages, double ns_per_switch,
                                                      bool count_itlb, std::string& error) {
  SharedTotals totals;
  // Round trips that last about one run of the budget, as the timed figure's runs did.
  const auto round_trips = static_cast<std::uint64_t>(
      std::clamp(budget.seconds_per_run * 1e9 / (2 * std::max(ns_per_switch, 1.0)), 16.0, 1e7));
  auto total = [&](std::uint64_t n) -> std::pair<double, double> {
    totals.Clear();
    TimePinnedFutexPingPong(processes, cpu, PagePass(pages, &totals, count_itlb), n);
    if (totals.failed_errno() != 0) {
      throw std::system_error(totals.failed_errno(), std::generic_category(),
                              "a TLB miss counter in the ping-pong");
    }
    return {static_cast<double>(totals.dtlb()), static_cast<double>(totals.itlb())};
  };
  std::vector<std::vector<double>> samples(2);
  try {
    for (int run = 0; run < budget.runs; ++run) {
      const auto [dtlb_short, itlb_short] = total(round_trips);
      const auto [dtlb_long, itlb_long] = total(2 * round_trips);
      // 2n - n round trips are 2n switches. A negative difference (a noisy count) is kept: it
      // says how far to trust the median.
      const double switches = 2.0 * static_cast<double>(round_trips);
      samples[0].push_back((dtlb_long - dtlb_short) / switches);
      samples[1].push_back((itlb_long - itlb_short) / switches);
    }
  } catch (const std::system_error& e) {
    error = e.what();
    return {};
  }
  return samples;
}

std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  char text[400];
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(text, sizeof text, format, arguments);
  va_end(arguments);
  return text;
}

}  // namespace

AddressSpaceFacts ReadAddressSpaceFacts() {
  AddressSpaceFacts facts;
  std::ifstream cpuinfo("/proc/cpuinfo");
  // One "flags" line a CPU; the first is enough (the kernel shows the features common to all).
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string flag; words >> flag;) {
      facts.pcid = facts.pcid || flag == "pcid";
      facts.invpcid = facts.invpcid || flag == "invpcid";
    }
    break;
  }
  facts.pti = ReadFirstLine("/sys/devices/system/cpu/vulnerabilities/meltdown");
  if (facts.pti.empty()) {
    facts.pti = "unknown (no /sys/devices/system/cpu/vulnerabilities/meltdown)";
  }
  try {
    facts.tlb_counters = ProbeTlbCounters(facts.tlb_counters_reason);
  } catch (const std::exception& e) {
    facts.tlb_counters = false;
    facts.tlb_counters_reason = std::string("the probe failed: ") + e.what();
  }
  return facts;
}

std::string DescribeAddressSpace(const AddressSpaceFacts& facts) {
  std::string line = "Address space: ";
  // Linux tags TLB entries with one of a few PCIDs per CPU, so a switch back to one of the
  // recently run address spaces finds its entries still there.
  line += facts.pcid ? "PCID: a process switch keeps the TLB entries of recently run processes"
                     : "no PCID: every process switch flushes the TLB";
  const bool pti = facts.pti.find("PTI") != std::string::npos;
  if (pti) {
    line += facts.pcid ? "; PTI: every kernel entry switches page tables too (PCID keeps the "
                         "user entries)"
                       : "; PTI: every kernel entry switches page tables too and flushes the "
                         "user entries, so a thread switch refills them as well";
  } else {
    line += "; Meltdown: " + facts.pti;
  }
  line += facts.tlb_counters
              ? "; TLB miss counters: counted (" + facts.tlb_counters_reason + ")"
              : "; TLB miss counters: not exposed (" + facts.tlb_counters_reason + ")";
  return line;
}

std::vector<Figure> MeasureTlbReach(const Budget& budget, const std::vector<int>& pages,
                                    const AddressSpaceFacts& facts) {
  const int cpu = AllowedCpus()[0];
  bool count = facts.tlb_counters;
  if (!count) {
    std::cerr << "switchcost: the CPU's TLB miss counters are not exposed to this machine: "
              << facts.tlb_counters_reason << "; the tlb-misses rows are left out" << std::endl;
  }
  // The iTLB counter is a separate event: a machine may expose the dTLB one alone.
  bool count_itlb = count && TlbCounter(kItlbLoadMisses).ok();
  if (count && !count_itlb) {
    std::cerr << "switchcost: the iTLB miss counter is not exposed to this machine: "
              << TlbCounter(kItlbLoadMisses).error() << "; its rows are left out" << std::endl;
  }
  const std::string counted_as =
      facts.tlb_counters_reason.find("user mode only") == 0 ? "user mode only" : "user and kernel";

  std::vector<Figure> figures;
  for (int n : pages) {
    if (n < 1 || n > (1 << 20)) throw std::invalid_argument("pages a side must be 1 to 2^20");
    const std::string name = "pages" + std::to_string(n);
    PinCurrentThread pin({cpu});
    // The pass alone, for each unit what its ping-pong touches without the switches: a process's
    // side sees its own pages only; the two threads' pages are in one address space, touched in
    // turn.
    PageSet own(n), other(n);
    const Stats process_pass = MeasureNs(budget, 1, [&](std::uint64_t passes) {
      const ThreadCpuTimer timer;
      for (std::uint64_t i = 0; i < passes; ++i) own.Touch();
      return timer.Seconds();
    });
    const Stats thread_pass = MeasureNs(budget, 2, [&](std::uint64_t passes) {
      const ThreadCpuTimer timer;
      for (std::uint64_t i = 0; i < passes; ++i) {
        own.Touch();
        other.Touch();
      }
      return timer.Seconds();
    });

    for (const bool processes : {true, false}) {
      const char* unit = processes ? "process" : "thread";
      const Stats& pass = processes ? process_pass : thread_pass;
      const Stats trip = MeasureNs(budget, 2, [&](std::uint64_t round_trips) {
        return TimePinnedFutexPingPong(processes, cpu, PagePass(n), round_trips);
      });
      // As the working-set rows: the figure is what was measured, the difference is in the note.
      figures.push_back(
          {unit, "switch", "futex+" + name, true, trip.median, "ns", trip.spread, trip.runs,
           Printf("futex switch + one pass over %d pages (one byte a page) per side; the pass "
                  "alone takes %.0f ns, so the switch with refill costs %.0f ns",
                  n, pass.median, trip.median - pass.median)});
      if (!count) continue;
      std::string error;
      const std::vector<std::vector<double>> misses =
          CountMissesPerSwitch(budget, processes, cpu, n, trip.median, count_itlb, error);
      if (misses.empty()) {
        std::cerr << "switchcost: counting TLB misses failed (" << error
                  << "); the remaining tlb-misses rows are left out" << std::endl;
        count = false;
        continue;
      }
      const char* const events[2] = {"dTLB-load-misses", "iTLB-load-misses"};
      for (int event = 0; event < (count_itlb ? 2 : 1); ++event) {
        const Stats stats = Summarize(misses[event]);
        figures.push_back(
            {unit, "tlb-misses", std::string(events[event]) + "/futex+" + name, true, stats.median,
             "count", stats.spread, stats.runs,
             Printf("%s per switch, both sides, %s, by perf_event_open: the futex switch + one "
                    "pass over %d pages per side (runs of 2n less n round trips)",
                    events[event], counted_as.c_str(), n)});
      }
    }
    figures.push_back(
        {"process", "touch", name, true, process_pass.median, "ns", process_pass.spread,
         process_pass.runs,
         Printf("one pass over %d pages (one byte a page, %zu B apart), no switch: one address "
                "space's pages stay in the TLB (~64 L1 and ~1.5-3k L2 dTLB entries)",
                n, kStrideBytes)});
    figures.push_back(
        {"thread", "touch", name, true, thread_pass.median, "ns", thread_pass.spread,
         thread_pass.runs,
         Printf("both threads' passes over %d pages each, in turn, in one address space, no "
                "switch: ns per pass; the TLB holds %d pages (~64 L1 and ~1.5-3k L2 dTLB entries)",
                n, 2 * n)});
  }
  return figures;
}

}  // namespace switchyard::switchcost
