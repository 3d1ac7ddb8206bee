// The prefork model, as Apache's prefork MPM: worker processes forked once, at start, each
// serving one connection at a time with plain blocking calls on the listening socket they all
// inherited. accept() hands each new connection to one idle worker (the kernel wakes just one);
// when every worker is busy, new connections wait in the listen backlog. Who runs next is the
// kernel's choice, and a switch between connections is a switch between processes. The workers
// share only what was mapped MAP_SHARED before the fork: the store and the metrics slots.
//
// Three kinds of process:
//   master      the process started: serves /metrics (civetweb threads), answers SIGINT/SIGTERM.
//   supervisor  forked by the master before any thread exists; forks the workers, reaps them with
//               wait4 (so their CPU and switches are kept), replaces one that dies, drains them on
//               SIGTERM. It never starts a thread.
//   worker      forked by the supervisor; accept, serve, close, again.
// Why a supervisor rather than a master that forks: a process that forks while it has other
// threads gives the child a copy of every lock those threads held at that instant, and no thread
// to release them (malloc arenas, prometheus-cpp's and civetweb's mutexes). The master has
// civetweb threads from Metrics::Serve on, but the supervisor is forked before it and stays
// single-threaded, so every fork, the first and each replacement, happens where no other thread
// exists to hold a lock.
// A worker killed while it holds one of the store's locks does not wedge the others: the locks are
// robust and the next locker repairs the shard (servers/common/store_shard.cc says what a death
// costs).
#include "servers/prefork/prefork_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "servers/common/child_process.h"
#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/run_queue_wait.h"
#include "servers/common/session.h"
#include "servers/common/store.h"

namespace switchyard {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kDefaultWorkers = 256;  // Apache's MaxRequestWorkers
// Metrics child slots: the supervisor is child 0, worker i is child 1 + i.
constexpr std::size_t kSupervisorSlot = 0;

// ---- a worker ----

// Lock-free atomics, so the signal handler may touch them.
std::atomic<bool> g_worker_stopping{false};
std::atomic<int> g_worker_connection{-1};

// SIGTERM from the supervisor: finish the connection in hand, then stop. Stopping reads on it
// lets the worker answer what it has read and then see end-of-file.
void OnWorkerSigterm(int) {
  g_worker_stopping.store(true);
  const int fd = g_worker_connection.load();
  if (fd >= 0) shutdown(fd, SHUT_RD);  // async-signal-safe
}

// One connection, start to end, in this worker process.
void ServeConnection(ServerContext& context, int fd) {
  Session session(context);
  for (;;) {
    const Session::Step step = session.Process();
    if (!session.output().empty()) {
      if (!SendAll(fd, session.output(),
                   [&](std::size_t unwritten) { return session.OwesTooMuch(fd, unwritten); })) {
        return;
      }
      session.OutputSent();
    }
    switch (step.next) {
      case Session::Next::kNeedInput: {
        const auto space = session.ReadSpace();
        ssize_t n;
        do n = recv(fd, space.data(), space.size(), 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0) return;
        session.CommitRead(static_cast<std::size_t>(n));
        break;
      }
      case Session::Next::kFlush:
        break;
      case Session::Next::kWait:
        std::this_thread::sleep_for(step.wait);  // the process is the unit: it simply sleeps
        session.FinishWait();
        break;
      case Session::Next::kClose:
        return;
    }
  }
}

[[noreturn]] void RunWorker(ServerContext& context, int listen_fd, std::size_t worker) {
  context.metrics.UseChildSlot(1 + worker);
  context.metrics.TaskStarted();  // this process; its slot is cleared when it is reaped
  struct sigaction action {};
  action.sa_handler = OnWorkerSigterm;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked accept() returns EINTR and sees the flag
  sigaction(SIGTERM, &action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);  // the supervisor's blocked signals are its own
  // A test hook (prefork_test.cc): every worker kills itself with SIGKILL the first time it holds
  // the store allocator's lock, as a worker killed at that instant would.
  if (std::getenv("SWITCHYARD_TEST_DIE_IN_STORE_ALLOCATOR") != nullptr)
    Store::CrashAtForTest(Store::CrashPoint::kAllocatorLocked);

  OpenConnections open(context);  // the one this process serves, at most
  bool accept_failing = false;    // logged once a run of failures: a pool may have 256 of us
  while (!g_worker_stopping.load()) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINVAL) break;  // the supervisor shut the listening socket down: draining
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: back off instead of spinning on a ready listen socket.
        if (!accept_failing) {
          std::cerr << "switchyard: accept failed: " << std::strerror(errno) << " (worker "
                    << getpid() << "; retrying every 10 ms)\n";
        }
        accept_failing = true;
        poll(nullptr, 0, 10);
      }
      continue;  // EINTR and the like: the loop checks whether to stop
    }
    accept_failing = false;
    SetNoDelay(fd);
    g_worker_connection.store(fd);
    if (g_worker_stopping.load()) shutdown(fd, SHUT_RD);  // SIGTERM came before the store above
    if (open.Admit(fd)) {
      open.Serve(fd, [&] { ServeConnection(context, fd); });  // closes it
    } else {
      close(fd);
    }
    g_worker_connection.store(-1);
  }
  // _exit, not exit: the destructors and atexit handlers belong to the master, whose memory this
  // process merely copied (its stdout buffer, its prometheus objects).
  _exit(0);
}

// ---- the supervisor ----

class PoolSupervisor {
 public:
  PoolSupervisor(ServerContext& context, int listen_fd, unsigned workers)
      : context_(context), listen_fd_(listen_fd), pids_(workers, 0) {}

  [[noreturn]] void Run() {
    // SIGTERM and SIGCHLD were blocked before the fork, so none is lost; they arrive here as
    // readable events instead of handlers.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGCHLD);
    signal_fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    for (std::size_t i = 0; i < pids_.size(); ++i) StartWorker(i);
    for (;;) {
      pollfd pfd{signal_fd_, POLLIN, 0};
      poll(&pfd, 1, PollTimeoutMs());
      signalfd_siginfo info;
      while (read(signal_fd_, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGTERM && !draining_) BeginDrain();
      }
      ReapExited();
      if (draining_) {
        if (live_ == 0) _exit(0);
        if (Clock::now() > drain_deadline_) StopNow();
      } else {
        for (std::size_t i = 0; i < pids_.size(); ++i)
          if (pids_[i] == 0) StartWorker(i);  // one that could not be forked before
      }
    }
  }

 private:
  int PollTimeoutMs() const {
    if (draining_) return 100;
    for (pid_t pid : pids_)
      if (pid == 0) return 1000;  // retry forking what failed
    return -1;
  }

  void StartWorker(std::size_t worker) {
    const pid_t self = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      close(signal_fd_);
      DieWithParent(self);
      RunWorker(context_, listen_fd_, worker);
    }
    if (pid < 0) {
      std::cerr << "switchyard: cannot fork prefork worker " << worker << ": "
                << std::strerror(errno) << "; retrying in 1s\n";
      return;
    }
    pids_[worker] = pid;
    ++live_;
    context_.metrics.ChildStarted(1 + worker, pid);
  }

  // wait4 rather than waitpid: it returns what the child used, which the metrics keep. The
  // child's run-queue wait is not in it, so each exited child is first only looked at (WNOWAIT)
  // and its schedstat read while it is still a zombie.
  void ReapExited() {
    int status = 0;
    rusage usage{};
    siginfo_t exited{};
    while (waitid(P_ALL, 0, &exited, WEXITED | WNOHANG | WNOWAIT) == 0 && exited.si_pid > 0) {
      const std::uint64_t waited = LiveRunQueueWaitNanos("/proc/" + std::to_string(exited.si_pid));
      const pid_t pid = wait4(exited.si_pid, &status, 0, &usage);
      exited = {};
      if (pid <= 0) break;
      std::size_t worker = 0;
      while (worker < pids_.size() && pids_[worker] != pid) ++worker;
      if (worker == pids_.size()) continue;
      context_.metrics.ChildExited(1 + worker, usage, waited);
      pids_[worker] = 0;
      --live_;
      if (draining_) continue;
      std::cerr << "switchyard: prefork worker " << pid << " " << HowItEnded(status)
                << "; starting another\n";
      StartWorker(worker);
    }
  }

  // Every worker is told to finish the connection in hand (SIGTERM); shutting the listening
  // socket down wakes every idle worker blocked in accept() (EINVAL) and takes no new client.
  void BeginDrain() {
    draining_ = true;
    drain_deadline_ = DrainDeadline(context_.config);
    for (pid_t pid : pids_)
      if (pid > 0) kill(pid, SIGTERM);
    shutdown(listen_fd_, SHUT_RD);
  }

  [[noreturn]] void StopNow() {
    const int status = DrainTimedOut(live_, "prefork workers still busy", context_.config);
    for (pid_t pid : pids_)
      if (pid > 0) kill(pid, SIGKILL);
    while (wait(nullptr) > 0 || errno == EINTR) {
    }
    _exit(status);
  }

  ServerContext& context_;
  const int listen_fd_;
  int signal_fd_ = -1;
  std::vector<pid_t> pids_;  // by worker index; 0 while none runs in that place
  std::size_t live_ = 0;
  bool draining_ = false;
  Clock::time_point drain_deadline_;
};

// ---- the master ----

pid_t g_supervisor = -1;

}  // namespace

void StartPreforkPool(ServerContext& context, int listen_fd) {
  const unsigned workers = context.config.workers != 0 ? context.config.workers : kDefaultWorkers;
  context.metrics.ReserveChildSlots(1 + workers);
  sigset_t supervisor_signals, previous;
  sigemptyset(&supervisor_signals);
  sigaddset(&supervisor_signals, SIGTERM);
  sigaddset(&supervisor_signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &supervisor_signals, &previous);
  const pid_t master = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Ctrl-C reaches the whole process group; the master alone answers it, and the supervisor
    // hears of it as a SIGTERM from the master.
    signal(SIGINT, SIG_IGN);
    DieWithParent(master);
    PoolSupervisor(context, listen_fd, workers).Run();
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    throw std::runtime_error(std::string("cannot fork the prefork supervisor: ") +
                             std::strerror(errno));
  }
  g_supervisor = pid;
  context.metrics.ChildStarted(kSupervisorSlot, pid);
}

int RunPreforkServer(ServerContext&, int listen_fd, int signal_fd) {
  close(listen_fd);  // the master never accepts; the workers hold their own copies
  return SuperviseChild(g_supervisor, signal_fd, "prefork supervisor");
}

}  // namespace switchyard
