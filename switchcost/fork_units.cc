#include "switchcost/fork_units.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "switchcost/helper_process.h"

namespace switchyard::switchcost {
namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr std::size_t kGiB = 1024 * kMiB;
constexpr std::size_t kPage = 4 * kKiB;
constexpr std::size_t kHugePage = 2 * kMiB;
// The parent that starts /bin/true, whose pages a child unshares, and whose PSS is read.
constexpr std::size_t kParentBytes = 64 * kMiB;
// The memory whose copy-on-write faults are timed, once a run: 4,096 pages (or 8 huge pages) give
// a steady mean, and few enough that the runs stay short where a fault takes tens of µs.
constexpr std::size_t kCowBytes = 16 * kMiB;
// The largest parent forked: its page tables (2 MiB of them) take milliseconds to copy. With
// --quick, a smaller one: writing 1 GiB of 4 KiB pages takes seconds where a minor fault is slow.
constexpr std::size_t kLargestParentBytes = kGiB;
constexpr std::size_t kQuickLargestParentBytes = 256 * kMiB;
constexpr const char* kTrue = "/bin/true";

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// "4KiB", "64MiB", "1GiB": sizes as the method names spell them.
std::string SizeName(std::size_t bytes) {
  if (bytes >= kGiB && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  return std::to_string(bytes / kKiB) + "KiB";
}

// "2.1 MiB", "180 KiB": a reading, for a note.
std::string Readable(double bytes) {
  char text[32];
  if (bytes >= kMiB) {
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / kMiB);
  } else {
    std::snprintf(text, sizeof text, "%.0f KiB", bytes / kKiB);
  }
  return text;
}

// This process's anonymous memory mapped as transparent huge pages.
std::uint64_t AnonHugePagesBytes() {
  return ReadKbField("/proc/self/smaps_rollup", "AnonHugePages:");
}

// Shared_Clean + Shared_Dirty of the mapping in /proc/PID/smaps that holds `address`: how much
// of it another process maps too.
std::uint64_t SharedBytesAround(const std::string& pid, const void* address) {
  const std::string path = "/proc/" + pid + "/smaps";
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  const auto where = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  std::uint64_t shared = 0;
  for (std::string line; std::getline(file, line);) {
    unsigned long start = 0, end = 0;  // a mapping's first line: "start-end perms ..."
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2) {
      inside = start <= where && where < end;
    } else if (inside &&
               (line.rfind("Shared_Clean:", 0) == 0 || line.rfind("Shared_Dirty:", 0) == 0)) {
      shared += std::stoull(line.substr(line.find(':') + 1)) * 1024;
    }
  }
  return shared;
}

// Whether `bytes` more can be touched without pressing the machine: MemAvailable is at least
// twice that. If not, says on stderr which figures are left out.
bool Affordable(std::size_t bytes, const std::string& left_out) {
  const std::uint64_t available = ReadKbField("/proc/meminfo", "MemAvailable:");
  if (available >= 2 * bytes) return true;
  std::cerr << "switchcost: " << left_out << " left out: it touches " << SizeName(bytes)
            << " and MemAvailable is " << Readable(static_cast<double>(available))
            << ", less than twice that\n";
  return false;
}

// Private anonymous memory, mapped but not touched (no MAP_POPULATE). With `huge`, 2 MiB-aligned
// and advised MADV_HUGEPAGE, so each aligned 2 MiB may be one transparent huge page; otherwise
// advised MADV_NOHUGEPAGE, so it is 4 KiB pages whatever the system's setting, and its page
// tables grow with what is touched.
class Region {
 public:
  Region(std::size_t bytes, bool huge)
      : bytes_(bytes), mapped_bytes_(bytes + (huge ? kHugePage : 0)) {
    mapping_ =
        mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping_ == MAP_FAILED) ThrowErrno("mmap of " + SizeName(mapped_bytes_));
    const auto start = reinterpret_cast<std::uintptr_t>(mapping_);
    data_ = reinterpret_cast<char*>(huge ? (start + kHugePage - 1) & ~(kHugePage - 1) : start);
    // A kernel without transparent huge pages refuses both pieces of advice; without them the
    // pages are 4 KiB anyway, so only a refused MADV_HUGEPAGE is an error.
    if (madvise(data_, bytes_, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0 && huge) {
      const int error = errno;
      munmap(mapping_, mapped_bytes_);
      throw std::system_error(error, std::generic_category(), "madvise(MADV_HUGEPAGE)");
    }
  }
  ~Region() { munmap(mapping_, mapped_bytes_); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  char* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

  // Writes one byte every `stride` bytes: one write a page, the first of which faults.
  void Write(std::size_t stride, char value) {
    for (std::size_t i = 0; i < bytes_; i += stride) data_[i] = value;
    asm volatile("" : : "r"(data_) : "memory");  // the writes are the point: keep them
  }

 private:
  std::size_t bytes_;
  std::size_t mapped_bytes_;
  void* mapping_ = nullptr;
  char* data_ = nullptr;
};

// Each starts one child that exits at once (or runs /bin/true) and returns its pid.
pid_t ForkAndExit() {
  const pid_t child = fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) _exit(0);
  return child;
}

char kTrueName[] = "true";
char* const kTrueArgv[] = {kTrueName, nullptr};

pid_t ForkAndExec() {
  const pid_t child = fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) {
    execve(kTrue, kTrueArgv, environ);
    _exit(127);
  }
  return child;
}

pid_t Spawn() {
  pid_t child = -1;
  const int error = posix_spawn(&child, kTrue, nullptr, nullptr, kTrueArgv, environ);
  if (error != 0) throw std::system_error(error, std::generic_category(), "posix_spawn /bin/true");
  return child;
}

// Apart and not inlined, so that nothing of the caller's lives across vfork's two returns.
[[gnu::noinline]] pid_t VforkAndExit() {
  const pid_t child = vfork();
  if (child == 0) _exit(0);
  if (child < 0) ThrowErrno("vfork");
  return child;
}

// Times `start` + waitpid by the CPU time of this process and the children it waited for
// (getrusage): what starting and ending one child costs both sides, without the time other
// processes held the CPUs.
Stats TimeStarts(const Budget& budget, const std::string& what, pid_t (*start)()) {
  return MeasureNs(budget, 1, [&](std::uint64_t n) {
    const double cpu_before = ProcessTreeCpuSeconds();
    for (std::uint64_t i = 0; i < n; ++i) WaitForSuccess(start(), what);
    return ProcessTreeCpuSeconds() - cpu_before;
  });
}

Figure ProcessFigure(const std::string& operation, const std::string& method, const Stats& stats,
                     const std::string& unit_of_value, const std::string& note) {
  return Figure{"process",     operation,    method,     false, stats.median,
                unit_of_value, stats.spread, stats.runs, note};
}

// In a helper: grows by `bytes` of written 4 KiB pages, then forks and reaps children.
std::vector<Figure> ForkFrom(const Budget& budget, std::size_t bytes) {
  Region region(bytes, false);
  region.Write(kPage, 1);
  const std::string page_tables = Readable(static_cast<double>(PageTableBytes()));
  const Stats stats = TimeStarts(budget, "a forked child", ForkAndExit);
  return {ProcessFigure(
      "fork", "fork+exit+wait/rss-" + SizeName(bytes), stats, "ns",
      "fork of a process that wrote " + SizeName(bytes) + " of its own 4 KiB pages (VmPTE " +
          page_tables +
          ": fork copies these page tables and write-protects the pages), child _exit(0), "
          "parent waitpid; CPU time of parent and child")};
}

// In a helper of 64 MiB written: /bin/true started three ways, and a vfork.
std::vector<Figure> StartsFrom64MiB(const Budget& budget) {
  Region region(kParentBytes, false);
  region.Write(kPage, 1);
  const std::string parent = "from a parent that wrote " + SizeName(kParentBytes) + " (VmPTE " +
                             Readable(static_cast<double>(PageTableBytes())) + ")";
  const std::string suffix = "/rss-" + SizeName(kParentBytes);
  const Stats exec = TimeStarts(budget, "fork+exec of /bin/true", ForkAndExec);
  const Stats spawn = TimeStarts(budget, "posix_spawn of /bin/true", Spawn);
  const Stats borrow = TimeStarts(budget, "a vforked child", VforkAndExit);
  return {
      ProcessFigure("fork", "fork+exec+wait" + suffix, exec, "ns",
                    "fork " + parent +
                        ", child execve /bin/true, parent waitpid; CPU time of both, /bin/true's "
                        "own start and exit included"),
      ProcessFigure("fork", "posix_spawn+wait" + suffix, spawn, "ns",
                    "posix_spawn of /bin/true " + parent +
                        ": glibc's clone(CLONE_VM|CLONE_VFORK) copies no page tables; CPU time "
                        "of both, /bin/true's own start and exit included"),
      ProcessFigure("fork", "vfork+exit+wait" + suffix, borrow, "ns",
                    "vfork " + parent +
                        ", child _exit(0) at once, parent waitpid: the child borrows the "
                        "parent's memory, nothing is copied; CPU time of both")};
}

// This thread's CPU time for the first write to each of `n` fresh pages of `page` bytes, mapped
// in regions of at most 64 MiB and unmapped outside the timing. Clears *all_huge if a region
// meant for huge pages did not get them (AnonHugePages grew by less than the region).
double TimeFirstWrites(std::uint64_t n, std::size_t page, bool* all_huge) {
  const bool huge = page == kHugePage;
  double seconds = 0;
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t pages = std::min<std::uint64_t>(n - done, kParentBytes / page);
    Region region(pages * page, huge);
    const std::uint64_t huge_before = huge ? AnonHugePagesBytes() : 0;
    const ThreadCpuTimer timer;
    region.Write(page, 1);
    seconds += timer.Seconds();
    if (huge && AnonHugePagesBytes() < huge_before + region.bytes()) *all_huge = false;
    done += pages;
  }
  return seconds;
}

// Bytes of each of the two buffers copies run between: at least the last-level cache sysconf
// reports (so between two copies of one page, twice the cache has been touched and the page is
// not cache-hot), at least 64 MiB, at most 1 GiB.
std::size_t CopyBufferBytes() {
  long cache = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (cache <= 0) cache = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const auto bytes = static_cast<std::size_t>(std::max(cache, 0L));
  // At most 128 MiB: more than any one CPU's L3 today, while a VM may report its host's whole
  // cache (508 MiB here), which only made touching the buffers take seconds.
  return std::clamp((bytes + kHugePage - 1) / kHugePage * kHugePage, 64 * kMiB, 128 * kMiB);
}

// Copies page after page from one buffer to the other, going round both.
class Copier {
 public:
  Copier(std::size_t buffer_bytes, bool huge) : from_(buffer_bytes, huge), to_(buffer_bytes, huge) {
    from_.Write(kPage, 1);  // real pages, not the shared zero page a read would map
    to_.Write(kPage, 1);    // no faults in the timed copies
  }

  // This thread's CPU time for `n` copies of `bytes`.
  double Time(std::uint64_t n, std::size_t bytes) {
    const ThreadCpuTimer timer;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (offset_ + bytes > from_.bytes()) offset_ = 0;
      std::memcpy(to_.data() + offset_, from_.data() + offset_, bytes);
      offset_ += bytes;
    }
    asm volatile("" : : "r"(to_.data()) : "memory");
    return timer.Seconds();
  }

 private:
  Region from_;
  Region to_;
  std::size_t offset_ = 0;
};

// In a helper: memcpy of 4 KiB, and of 2 MiB where huge pages are offered, going round two
// buffers. They are backed by huge pages where offered, as the kernel's direct map (through which
// it copies a page in a copy-on-write fault) is, and because touching them is then quicker.
std::vector<Figure> CopyFigures(const Budget& budget, bool huge_offered) {
  const std::size_t buffer = CopyBufferBytes();
  if (!Affordable(2 * buffer, "the copy rows")) return {};
  const std::uint64_t huge_before = huge_offered ? AnonHugePagesBytes() : 0;
  Copier copier(buffer, huge_offered);
  const bool huge = huge_offered && AnonHugePagesBytes() >= huge_before + 2 * buffer;
  if (huge_offered && !huge) {
    std::cerr << "switchcost: copy memcpy/2MiB is left out: the buffers asked for huge pages "
                 "(MADV_HUGEPAGE) but AnonHugePages in /proc/self/smaps_rollup did not grow by "
                 "their size\n";
  }
  std::vector<Figure> figures;
  for (std::size_t bytes : {kPage, kHugePage}) {
    if (bytes == kHugePage && !huge) continue;
    const Stats copy = MeasureNs(budget, 1, [&](std::uint64_t n) { return copier.Time(n, bytes); });
    figures.push_back(ProcessFigure(
        "copy", "memcpy/" + SizeName(bytes), copy, "ns",
        "memcpy of " + SizeName(bytes) + " at a time, going round two buffers of " +
            SizeName(buffer) + " each (" + (huge ? "2 MiB huge pages" : "4 KiB pages") +
            "; at least the last-level cache sysconf reports), so no page copied is cache-hot; "
            "this thread's CPU time"));
  }
  return figures;
}

// In a helper: the first write to fresh pages of `page` bytes (4 KiB, or 2 MiB huge), and the
// first write to each page a child shares with its parent after fork.
std::vector<Figure> PageFigures(const Budget& budget, std::size_t page) {
  const bool huge = page == kHugePage;
  const std::string size = SizeName(page);
  const std::string huge_note =
      huge ? "2 MiB-aligned, MADV_HUGEPAGE, huge pages checked in AnonHugePages"
           : "MADV_NOHUGEPAGE";
  std::vector<Figure> figures;
  auto not_huge = [&](const std::string& what) {
    std::cerr << "switchcost: the 2 MiB rows from " << what << " on are left out: AnonHugePages "
              << "in /proc/self/smaps_rollup did not grow by the memory written with "
              << "MADV_HUGEPAGE, so the kernel gave 4 KiB pages (too little free contiguous "
              << "memory, or /sys/kernel/mm/transparent_hugepage/defrag)\n";
    return figures;
  };

  bool all_huge = true;
  const Stats first =
      MeasureNs(budget, 1, [&](std::uint64_t n) { return TimeFirstWrites(n, page, &all_huge); });
  if (!all_huge) return not_huge("page-fault minor/2MiB");
  figures.push_back(ProcessFigure(
      "page-fault", "minor/" + size, first, "ns",
      "first write to each " + size + " page of fresh anonymous memory (mmap, " + huge_note +
          ", no MAP_POPULATE): the fault allocates, zeroes and maps a page; this thread's CPU "
          "time, mmap and munmap not timed"));

  Region region(kCowBytes, huge);
  const std::uint64_t huge_before = AnonHugePagesBytes();
  region.Write(page, 1);
  if (huge && AnonHugePagesBytes() < huge_before + region.bytes()) {
    return not_huge("cow-fault 2MiB");
  }
  const double pages = static_cast<double>(region.bytes() / page);
  std::vector<double> child_ns, parent_ns;
  double child_huge_before = 0, child_huge_after = 0;
  for (int run = 0; run < budget.runs; ++run) {
    // The child's side: it writes one byte to each page it shares with this process.
    Pipe results;
    Child child([&] {
      const double huge_pages_before = static_cast<double>(AnonHugePagesBytes());
      const ThreadCpuTimer timer;
      region.Write(page, 2);
      const double ns = timer.Seconds() * 1e9 / pages;
      return results.Send(ns) && results.Send(huge_pages_before) &&
                     results.Send(static_cast<double>(AnonHugePagesBytes()))
                 ? 0
                 : 1;
    });
    double ns = 0;
    if (!results.Receive(ns) || !results.Receive(child_huge_before) ||
        !results.Receive(child_huge_after)) {
      throw std::runtime_error("the copy-on-write child sent no figures");
    }
    child.Wait("the copy-on-write child");
    child_ns.push_back(ns);
  }
  for (int run = 0; run < budget.runs && !huge; ++run) {
    // The parent's side: it writes each page it shares with a child that is alive and idle.
    Pipe release;
    Child child([&] {
      char go = 0;
      return release.Receive(go) ? 0 : 1;
    });
    const ThreadCpuTimer timer;
    region.Write(page, 3);
    parent_ns.push_back(timer.Seconds() * 1e9 / pages);
    release.Send('x');
    child.Wait("the idle child");
  }
  const std::string shared = std::to_string(static_cast<long>(pages)) + " pages (" +
                             SizeName(region.bytes()) + ", " + huge_note + ")";
  std::string child_note = "child side: the child's first write to each of the " + shared +
                           " it shares with its parent after fork, one byte a page; the fault "
                           "allocates a page, copies " +
                           size + " into it and maps it; the child's CPU time, one fork a run";
  if (huge) {
    // Since Linux 5.8 a write to a shared huge page splits the writer's huge mapping and copies
    // only the 4 KiB written; AnonHugePages of the child shows which happened here.
    const bool split = child_huge_after < child_huge_before;
    child_note = "child side: the child's first write to each of the " + shared +
                 " it shares with its parent after fork, one byte a huge page; its "
                 "AnonHugePages went from " +
                 Readable(child_huge_before) + " to " + Readable(child_huge_after) +
                 (split ? ": the kernel split each huge mapping and copied only the 4 KiB page "
                          "written, no 2 MiB copy"
                        : ": each fault copied a whole 2 MiB page") +
                 "; the child's CPU time, one fork a run";
  }
  figures.push_back(ProcessFigure("cow-fault", size, Summarize(child_ns), "ns", child_note));
  if (!huge) {
    figures.push_back(ProcessFigure(
        "cow-fault", size + "/parent-side", Summarize(parent_ns), "ns",
        "parent side: the parent's first write to each of the " + shared +
            " it shares with a child that is alive and idle: the same copy, taken by the "
            "parent; its CPU time, one fork a run"));
  }
  return figures;
}

// In a helper of 64 MiB written: whole-process PSS of parent and child just after fork and after
// the child wrote every page of the 64 MiB.
std::vector<Figure> CowSharing(const Budget& budget) {
  Region region(kParentBytes, false);
  region.Write(kPage, 1);
  const auto bytes = static_cast<double>(region.bytes());
  enum { kParentBefore, kChildBefore, kParentAfter, kChildAfter, kCount };
  std::vector<double> pss[kCount], shared_before, shared_after;
  for (int run = 0; run < budget.runs; ++run) {
    Pipe to_child, to_parent;
    Child child([&] {
      char go = 0;
      if (!to_parent.Send('r') || !to_child.Receive(go)) return 1;
      region.Write(kPage, 2);
      return to_parent.Send('w') && to_child.Receive(go) ? 0 : 1;
    });
    const std::string pid = std::to_string(child.pid());
    char reply = 0;
    if (!to_parent.Receive(reply)) throw std::runtime_error("the copy-on-write child is silent");
    pss[kParentBefore].push_back(static_cast<double>(PssBytes()));
    pss[kChildBefore].push_back(static_cast<double>(PssBytes(pid)));
    shared_before.push_back(static_cast<double>(SharedBytesAround("self", region.data())));
    if (!to_child.Send('g') || !to_parent.Receive(reply)) {
      throw std::runtime_error("the copy-on-write child did not write its pages");
    }
    pss[kParentAfter].push_back(static_cast<double>(PssBytes()));
    pss[kChildAfter].push_back(static_cast<double>(PssBytes(pid)));
    shared_after.push_back(static_cast<double>(SharedBytesAround("self", region.data())));
    to_child.Send('e');
    child.Wait("the copy-on-write child");
  }
  auto percent = [&](const std::vector<double>& shared) {
    return std::to_string(static_cast<int>(Summarize(shared).median * 100 / bytes + 0.5)) + "%";
  };
  const std::string before = "just after fork, before the child writes: " + percent(shared_before) +
                             " of the parent's " + SizeName(region.bytes()) +
                             " region is shared (smaps Shared_*), and PSS counts each shared "
                             "page half to each process";
  const std::string after = "after the child wrote one byte to every page of the " +
                            SizeName(region.bytes()) + " region: " + percent(shared_after) +
                            " of it is still shared; each process holds its own copy";
  const std::string parent =
      "whole-process PSS of a parent that wrote " + SizeName(region.bytes()) + " (4 KiB pages), ";
  const std::string child = "whole-process PSS of its forked child, ";
  return {ProcessFigure("memory", "cow/parent-pss-before", Summarize(pss[kParentBefore]), "bytes",
                        parent + before),
          ProcessFigure("memory", "cow/child-pss-before", Summarize(pss[kChildBefore]), "bytes",
                        child + before),
          ProcessFigure("memory", "cow/parent-pss-after", Summarize(pss[kParentAfter]), "bytes",
                        parent + after),
          ProcessFigure("memory", "cow/child-pss-after", Summarize(pss[kChildAfter]), "bytes",
                        child + after)};
}

// Whether a region that asks (MADV_HUGEPAGE) can get transparent huge pages: "enabled" shows
// [always] or [madvise]. If not, says on stderr that the 2 MiB rows are left out.
bool HugePagesOffered() {
  std::ifstream file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string setting;
  std::getline(file, setting);
  if (setting.find("[always]") != std::string::npos ||
      setting.find("[madvise]") != std::string::npos) {
    return true;
  }
  std::cerr << "switchcost: the 2 MiB rows (page-fault minor/2MiB, copy memcpy/2MiB, cow-fault "
               "2MiB) are left out: transparent huge pages are "
            << (setting.empty() ? "not in this kernel" : "off here (" + setting + ")") << "\n";
  return false;
}

}  // namespace

std::vector<Figure> MeasureFork(const Budget& budget, bool quick) {
  std::vector<Figure> figures;
  auto add = [&](std::vector<Figure> more) {
    for (Figure& figure : more) figures.push_back(std::move(figure));
  };
  const std::size_t largest = quick ? kQuickLargestParentBytes : kLargestParentBytes;
  for (std::size_t bytes : {kMiB, kParentBytes, largest}) {
    if (Affordable(bytes, "fork+exit+wait/rss-" + SizeName(bytes))) {
      add(InHelperProcess([&] { return ForkFrom(budget, bytes); }));
    }
  }
  if (Affordable(kParentBytes, "the rows from a parent of " + SizeName(kParentBytes))) {
    add(InHelperProcess([&] { return StartsFrom64MiB(budget); }));
    add(InHelperProcess([&] { return PageFigures(budget, kPage); }));
    const bool huge_offered = HugePagesOffered();
    add(InHelperProcess([&] { return CopyFigures(budget, huge_offered); }));
    if (huge_offered) add(InHelperProcess([&] { return PageFigures(budget, kHugePage); }));
    add(InHelperProcess([&] { return CowSharing(budget); }));
  }
  return figures;
}

}  // namespace switchyard::switchcost
