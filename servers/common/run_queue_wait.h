// switchyard_run_queue_wait_seconds_total: how long the server's threads were runnable but waited
// for a CPU. The kernel keeps it per thread, as the second field of
// /proc/<pid>/task/<tid>/schedstat (nanoseconds; CONFIG_SCHED_INFO, on in Debian's kernels), and
// nowhere for a whole process.
//
// A thread's schedstat vanishes when the thread exits, and thread_per_conn retires a thread with
// every connection, so a plain sum over the live threads would go backwards. Two things keep the
// total whole and monotone:
// - A thread that serves connections calls WatchThisThread() (Session's constructor does). When
//   it exits, a thread_local destructor reads its final figure from /proc/thread-self and adds it
//   to the exited total: a thread that lived between two scrapes is still counted in full.
// - The exported total never decreases: it is the larger of what was last exported and
//   exited + live. This absorbs the microseconds between a thread's final read and its removal
//   from /proc, when it is counted twice, and a thread that never called WatchThisThread (gRPC's
//   own, the metrics endpoint's; they live as long as the server) exiting: the total then stalls
//   until the others have waited as long, rather than going backwards.
#pragma once

#include <cstdint>
#include <string>

namespace switchyard {

class RunQueueWait {
 public:
  // Arranges for this thread's run-queue wait to be kept when it exits. Cheap after the first call.
  static void WatchThisThread();
  // Seconds waited by every thread of this process so far, live or exited, plus
  // `other_processes_nanos` (a model's child processes); never decreases.
  static double TotalSeconds(std::uint64_t other_processes_nanos = 0);
};

// The run-queue wait of every live thread of the process at `proc_dir` ("/proc/self",
// "/proc/1234"), in nanoseconds; 0 if it is gone.
std::uint64_t LiveRunQueueWaitNanos(const std::string& proc_dir);

}  // namespace switchyard
