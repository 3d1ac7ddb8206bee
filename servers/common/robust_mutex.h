// A mutex that lives in memory shared between processes and survives the death of its owner.
//
// An ordinary process-shared mutex whose owner is killed (SIGKILL, a crash) stays locked forever:
// every later locker hangs. A POSIX robust mutex instead hands the lock to the next locker with
// EOWNERDEAD; that locker marks it consistent and must then repair whatever the dead owner was
// updating. This class does the POSIX part and tells the caller whether a repair is due; what to
// repair is the caller's business (see store_shard.cc). Boost 1.74's interprocess_mutex is not
// robust.
#ifndef SWITCHYARD_SERVERS_COMMON_ROBUST_MUTEX_H_
#define SWITCHYARD_SERVERS_COMMON_ROBUST_MUTEX_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace switchyard {

class RobustMutex {
 public:
  // Process-shared and robust; `recursive` for the owner to lock it again (Boost's segment
  // manager needs one such). Throws std::runtime_error if the system refuses the attributes.
  explicit RobustMutex(bool recursive = false);
  ~RobustMutex();
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // Locks; returns true if the previous owner died holding the lock. The caller owns it either
  // way, and in that case should repair what it guards before relying on it.
  [[nodiscard]] bool LockAndReportDeadOwner();

  // For std::lock_guard and Boost's scoped_lock: the same, with a dead owner only counted.
  void lock() { static_cast<void>(LockAndReportDeadOwner()); }
  bool try_lock();
  void unlock();

  // How many times a locker found the previous owner dead, in every process.
  std::uint64_t recoveries() const { return recoveries_.load(std::memory_order_relaxed); }

 private:
  // Called with the result of pthread_mutex_lock or _trylock; returns whether the owner died.
  bool Acquired(int result, const char* call);

  pthread_mutex_t mutex_;
  // Lock-free, so it works across processes in shared memory.
  std::atomic<std::uint64_t> recoveries_{0};
};

}  // namespace switchyard

#endif  // SWITCHYARD_SERVERS_COMMON_ROBUST_MUTEX_H_
