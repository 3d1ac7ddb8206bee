#include "servers/common/child_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace switchyard {

void DieWithParent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
}

std::string HowItEnded(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by SIG") + sigabbrev_np(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int SuperviseChild(pid_t child, int signal_fd, std::string_view what) {
  // A pidfd becomes readable when the child exits, so one poll waits for either event.
  const int child_fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  pollfd fds[2] = {{signal_fd, POLLIN, 0}, {child_fd, POLLIN, 0}};
  while (poll(fds, child_fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR) {
  }
  const bool signalled = fds[0].revents != 0;
  if (signalled) kill(child, SIGTERM);  // it drains, bounded by its --shutdown-timeout
  // Wait for it in poll, not in waitpid: a second signal must stop this process at once, and
  // ThreadSanitizer runs the handler of a signal that arrives during waitpid only when waitpid
  // returns (measured: after the child exited, 5 s late), while poll returns EINTR at once.
  if (child_fd >= 0) {
    pollfd exited{child_fd, POLLIN, 0};
    while (poll(&exited, 1, -1) < 0 && errno == EINTR) {
    }
    close(child_fd);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!signalled) {
    std::cerr << "switchyard: the " << what << " " << HowItEnded(status) << "; stopping\n";
    return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace switchyard
