#include "servers/common/run_queue_wait.h"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>

namespace switchyard {
namespace {

// "on-cpu-ns run-queue-wait-ns timeslices"; 0 when the thread is gone.
std::uint64_t ReadRunDelay(const std::string& schedstat_path) {
  std::ifstream schedstat(schedstat_path);
  std::uint64_t on_cpu = 0, waited = 0;
  if (!(schedstat >> on_cpu >> waited)) return 0;
  return waited;
}

std::atomic<std::uint64_t> g_exited_nanos{0};

struct ExitHook {
  bool armed = false;
  ~ExitHook() {
    if (armed) g_exited_nanos.fetch_add(ReadRunDelay("/proc/thread-self/schedstat"));
  }
};

}  // namespace

void RunQueueWait::WatchThisThread() {
  static thread_local ExitHook hook;
  hook.armed = true;
}

double RunQueueWait::TotalSeconds(std::uint64_t other_processes_nanos) {
  static std::mutex mutex;
  static std::uint64_t exported = 0;
  // Exited first, then live: a thread that exits in between is then counted twice (absorbed
  // below) rather than missed.
  const std::uint64_t exited = g_exited_nanos.load();
  const std::uint64_t total = exited + LiveRunQueueWaitNanos("/proc/self") + other_processes_nanos;
  std::lock_guard lock(mutex);
  exported = std::max(exported, total);
  return static_cast<double>(exported) / 1e9;
}

std::uint64_t LiveRunQueueWaitNanos(const std::string& proc_dir) {
  const std::string tasks = proc_dir + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return 0;
  std::uint64_t total = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    total += ReadRunDelay(tasks + "/" + entry->d_name + "/schedstat");
  }
  closedir(dir);
  return total;
}

}  // namespace switchyard
