#include "servers/common/robust_mutex.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace switchyard {
namespace {

void Check(int result, const char* call) {
  if (result != 0) {
    throw std::runtime_error(std::string("RobustMutex: ") + call + ": " + std::strerror(result));
  }
}

}  // namespace

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the recovery count is shared between processes");

RobustMutex::RobustMutex(bool recursive) {
  pthread_mutexattr_t attributes;
  Check(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init");
  Check(pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED), "setpshared");
  Check(pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST), "setrobust");
  if (recursive) {
    Check(pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE), "settype");
  }
  const int result = pthread_mutex_init(&mutex_, &attributes);
  pthread_mutexattr_destroy(&attributes);
  Check(result, "pthread_mutex_init");
}

RobustMutex::~RobustMutex() { pthread_mutex_destroy(&mutex_); }

bool RobustMutex::LockAndReportDeadOwner() {
  return Acquired(pthread_mutex_lock(&mutex_), "pthread_mutex_lock");
}

bool RobustMutex::try_lock() {
  const int result = pthread_mutex_trylock(&mutex_);
  if (result == EBUSY) return false;
  Acquired(result, "pthread_mutex_trylock");
  return true;
}

void RobustMutex::unlock() { pthread_mutex_unlock(&mutex_); }

bool RobustMutex::Acquired(int result, const char* call) {
  if (result == 0) return false;
  if (result == EOWNERDEAD) {
    // We own it now. Marking it consistent at once keeps it usable even if we die in turn while
    // repairing: the next locker gets EOWNERDEAD again and repeats the (idempotent) repair.
    pthread_mutex_consistent(&mutex_);
    recoveries_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // ENOTRECOVERABLE cannot happen (every EOWNERDEAD is made consistent above); anything else is a
  // bug. A lock that cannot be taken leaves nothing safe to do, and throwing from lock() would
  // leave callers believing they hold it.
  std::fprintf(stderr, "switchyard: %s failed: %s\n", call, std::strerror(result));
  std::abort();
}

}  // namespace switchyard
