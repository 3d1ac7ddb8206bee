#include "servers/common/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace switchyard {
namespace {

int g_write_end = -1;
std::atomic<int> g_signals{0};

// Runs on whichever thread the kernel picks, so it only does async-signal-safe things.
void OnSignal(int signal_number) {
  if (g_signals.fetch_add(1) > 0) _exit(128 + signal_number);  // second signal: stop now
  const int saved_errno = errno;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = write(g_write_end, &byte, 1);
  errno = saved_errno;
}

}  // namespace

int InstallShutdownSignal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("cannot create the signal pipe: ") + std::strerror(errno));
  }
  g_write_end = fds[1];
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads and writes elsewhere are not cut short
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return fds[0];
}

}  // namespace switchyard
