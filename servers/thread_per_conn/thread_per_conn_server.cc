// The thread-per-connection model: the main thread accepts, and every connection gets a new OS
// thread that reads, runs and writes with plain blocking calls. A read with no data puts the
// thread to sleep in the kernel, and the kernel's scheduler decides what runs next. Each thread
// costs a kernel task and a stack (--stack-kb); each wait costs a kernel context switch.
#include "servers/thread_per_conn/thread_per_conn_server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <thread>

#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/session.h"

namespace switchyard {
namespace {

class ThreadPerConnServer {
 public:
  ThreadPerConnServer(ServerContext& context, int listen_fd, int signal_fd)
      : context_(context), listen_fd_(listen_fd), signal_fd_(signal_fd), open_(context) {}

  int Run() {
    AcceptUntilSignalled();
    close(listen_fd_);
    open_.StopReading();
    open_.WaitUntilDrained();  // each connection's thread answers what it has read, then exits
    return open_.Finish();
  }

 private:
  void AcceptUntilSignalled() {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {signal_fd_, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) return;
      if (fds[0].revents == 0) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors or memory: back off instead of spinning on a ready listen socket.
          std::cerr << "switchyard: accept failed: " << std::strerror(errno) << "\n";
          poll(nullptr, 0, 10);
        }
        continue;
      }
      SetNoDelay(fd);
      if (open_.Admit(fd)) {
        Start(fd);
      } else {
        close(fd);
      }
    }
  }

  void Start(int fd) {
    // pthread rather than std::thread: std::thread cannot set the stack size.
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (context_.config.stack_kb != 0)
      pthread_attr_setstacksize(&attributes, context_.config.stack_kb * 1024);
    auto* job = new std::pair<ThreadPerConnServer*, int>(this, fd);
    pthread_t thread;
    const int rc = pthread_create(
        &thread, &attributes,
        [](void* arg) -> void* {
          auto [server, client] = *static_cast<std::pair<ThreadPerConnServer*, int>*>(arg);
          delete static_cast<std::pair<ThreadPerConnServer*, int>*>(arg);
          Metrics::Task task(server->context_.metrics);  // this thread
          server->open_.Serve(client, [server, client] { server->Serve(client); });
          return nullptr;
        },
        job);
    pthread_attr_destroy(&attributes);
    if (rc != 0) {  // out of threads or memory: refuse this one, keep serving the others
      delete job;
      std::cerr << "switchyard: cannot start a thread: " << std::strerror(rc) << "\n";
      SendAll(fd, "-ERR cannot start a thread for this connection\r\n");
      open_.Close(fd);
    }
  }

  // One connection, start to end, on its own thread.
  void Serve(int fd) {
    Session session(context_);
    for (;;) {
      const Session::Step step = session.Process();
      if (!session.output().empty()) {
        if (!SendAll(fd, session.output(),
                     [&](std::size_t unwritten) { return session.OwesTooMuch(fd, unwritten); }))
          return;
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
          std::this_thread::sleep_for(step.wait);  // the thread is the unit: it simply sleeps
          session.FinishWait();
          break;
        case Session::Next::kClose:
          return;
      }
    }
  }

  ServerContext& context_;
  const int listen_fd_;
  const int signal_fd_;
  OpenConnections open_;
};

}  // namespace

int RunThreadPerConnServer(ServerContext& context, int listen_fd, int signal_fd) {
  ThreadPerConnServer server(context, listen_fd, signal_fd);
  return server.Run();
}

}  // namespace switchyard
