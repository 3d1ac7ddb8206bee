// The thread-pool model, half-sync/half-async as memcached and most Java servers are built: the
// reactor thread owns every idle connection and waits for all of them at once in epoll; when one
// has input, the reactor puts it on a queue, and one of a fixed pool of worker threads takes it,
// reads, runs and replies with ordinary blocking calls (SY.WAIT simply sleeps the worker), then
// re-arms it in epoll and goes back to the queue. EPOLLONESHOT is what makes the hand-off safe:
// once a connection fires, epoll reports it to nobody until its worker re-arms it, so at most
// one thread ever touches a connection. The kernel schedules the threads; the queue decides which
// connection a free worker serves next. A request that blocks holds one worker, and the queue
// grows behind the others.
#include "servers/thread_pool/thread_pool_server.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/session.h"

namespace switchyard {
namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  Connection(ServerContext& context, int fd) : fd(fd), session(context) {}
  const int fd;
  Session session;
  Clock::time_point queued_at;  // when the reactor queued it, for switchyard_queue_wait_seconds
  bool armed = false;           // waiting in epoll rather than queued or held (under the mutex)
};

class ThreadPoolServer {
 public:
  ThreadPoolServer(ServerContext& context, int listen_fd, int signal_fd)
      : context_(context),
        listen_fd_(listen_fd),
        signal_fd_(signal_fd),
        epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
        queue_metrics_(context.metrics.AddQueueMetrics()),
        open_(context) {}

  ~ThreadPoolServer() { close(epoll_fd_); }

  int Run() {
    const unsigned workers = context_.config.workers != 0
                                 ? context_.config.workers
                                 : 4 * std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < workers; ++i) {
      if (!StartWorker()) {
        std::cerr << "switchyard: cannot start worker thread " << i + 1 << " of " << workers
                  << "\n";
        StopWorkers();
        return 1;
      }
    }
    Watch(listen_fd_, nullptr, EPOLLIN);
    Watch(signal_fd_, &signal_fd_, EPOLLIN);
    ReactUntilSignalled();
    close(listen_fd_);                                         // leaves epoll with it
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, signal_fd_, nullptr);  // it stays readable from now on
    Drain();
    // Exits 1 here if connections are left: workers are still blocked on them.
    const int status = open_.Finish();
    StopWorkers();
    return status;
  }

 private:
  // ---- the async half: the reactor thread ----

  void Watch(int fd, void* tag, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = tag;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }

  void ReactUntilSignalled() {
    epoll_event events[64];
    for (bool signalled = false; !signalled;) {
      const int n = epoll_wait(epoll_fd_, events, 64, -1);
      if (n < 0 && errno != EINTR) return;
      // The whole batch is dispatched even after the signal: a connection that fired is disarmed
      // until someone re-arms it, so dropping its event would strand it.
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == &signal_fd_) {
          signalled = true;
        } else if (events[i].data.ptr == nullptr) {
          Accept();
        } else {
          Enqueue(static_cast<Connection*>(events[i].data.ptr));
        }
      }
    }
  }

  void Accept() {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: back off instead of spinning on a ready listen socket.
        std::cerr << "switchyard: accept failed: " << std::strerror(errno) << "\n";
        usleep(10'000);
      }
      return;
    }
    SetNoDelay(fd);
    if (!open_.Admit(fd)) {
      close(fd);
      return;
    }
    auto connection = std::make_unique<Connection>(context_, fd);
    Connection* raw = connection.get();
    std::lock_guard lock(mutex_);
    connections_.emplace(raw, std::move(connection));
    // Armed for one event: when it fires, the connection belongs to the queue and then a worker.
    raw->armed = true;
    Watch(fd, raw, kArmed);
  }

  // Hands a connection back to epoll. The caller holds the mutex.
  void Rearm(Connection* connection) {
    connection->armed = true;
    epoll_event event{};
    event.events = kArmed;
    event.data.ptr = connection;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection->fd, &event);
  }

  void Enqueue(Connection* connection) {
    connection->queued_at = Clock::now();
    {
      std::lock_guard lock(mutex_);
      connection->armed = false;
      ready_.push_back(connection);
      queue_metrics_.depth.Increment();  // under the lock, so a scrape never sees it below zero
    }
    work_available_.notify_one();
  }

  // SIGTERM: every connection stops reading (OpenConnections). One a worker holds finishes the
  // requests it has already read, replies, then reads end-of-file and closes. An idle one goes the
  // same way once re-armed: shutdown() wakes no epoll waiter, but re-arming makes epoll look again
  // and see end-of-file. The reactor keeps dispatching until no connection is left, or the drain
  // deadline passes.
  void Drain() {
    open_.StopReading();
    {
      std::lock_guard lock(mutex_);
      for (const auto& [connection, owner] : connections_)
        if (connection->armed) Rearm(connection);
    }
    epoll_event events[64];
    while (open_.open() != 0 && Clock::now() < open_.deadline()) {
      const int n = epoll_wait(epoll_fd_, events, 64, 20);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr != &signal_fd_ && events[i].data.ptr != nullptr)
          Enqueue(static_cast<Connection*>(events[i].data.ptr));
      }
    }
  }

  // ---- the sync half: the worker threads ----

  bool StartWorker() {
    // pthread rather than std::thread: std::thread cannot set the stack size (--stack-kb).
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    if (context_.config.stack_kb != 0)
      pthread_attr_setstacksize(&attributes, context_.config.stack_kb * 1024);
    pthread_t thread;
    const int rc = pthread_create(
        &thread, &attributes,
        [](void* server) -> void* {
          static_cast<ThreadPoolServer*>(server)->WorkUntilStopped();
          return nullptr;
        },
        this);
    pthread_attr_destroy(&attributes);
    if (rc == 0) workers_.push_back(thread);
    return rc == 0;
  }

  void StopWorkers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_available_.notify_all();
    for (pthread_t thread : workers_) pthread_join(thread, nullptr);
  }

  void WorkUntilStopped() {
    Metrics::Task task(context_.metrics);  // this worker thread
    for (;;) {
      Connection* connection;
      {
        std::unique_lock lock(mutex_);
        work_available_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
        if (ready_.empty()) return;  // stopping, and nothing left to serve
        connection = ready_.front();
        ready_.pop_front();
        queue_metrics_.depth.Decrement();
      }
      queue_metrics_.wait.Observe(
          std::chrono::duration<double>(Clock::now() - connection->queued_at).count());
      bool keep = false;
      try {
        keep = Serve(*connection);
      } catch (const std::exception& error) {
        open_.Failed(connection->fd, error);
      }
      if (keep) {
        std::lock_guard lock(mutex_);
        Rearm(connection);  // back to the reactor
      } else {
        Close(connection);
      }
    }
  }

  // Runs everything the connection has sent until it has nothing more to read right now. Returns
  // false when the connection is to be closed.
  bool Serve(Connection& connection) {
    Session& session = connection.session;
    for (;;) {
      const Session::Step step = session.Process();
      if (!session.output().empty()) {
        // A blocking write: a client that does not read holds this worker, as in any
        // thread-based server without an output queue, until it owes more than
        // --output-buffer-bytes.
        if (!SendAll(connection.fd, session.output(), [&](std::size_t unwritten) {
              return session.OwesTooMuch(connection.fd, unwritten);
            })) {
          return false;
        }
        session.OutputSent();
      }
      switch (step.next) {
        case Session::Next::kNeedInput: {
          const auto space = session.ReadSpace();
          ssize_t n;
          do n = recv(connection.fd, space.data(), space.size(), MSG_DONTWAIT);
          while (n < 0 && errno == EINTR);
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Nothing read: the buffer goes back to this worker, and the connection waits in
            // epoll without one.
            session.CommitRead(0);
            return true;
          }
          if (n <= 0) return false;
          session.CommitRead(static_cast<std::size_t>(n));
          break;
        }
        case Session::Next::kFlush:
          break;
        case Session::Next::kWait:
          std::this_thread::sleep_for(step.wait);  // the worker is the unit: it simply sleeps
          session.FinishWait();
          break;
        case Session::Next::kClose:
          return false;
      }
    }
  }

  // Out of the map first, so Drain never re-arms a descriptor number reused since; closing then
  // also removes it from epoll (this was its only descriptor).
  void Close(Connection* connection) {
    std::unique_ptr<Connection> owned;
    {
      std::lock_guard lock(mutex_);
      auto it = connections_.find(connection);
      owned = std::move(it->second);
      connections_.erase(it);
    }
    open_.Close(owned->fd);
  }

  static constexpr std::uint32_t kArmed = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;

  ServerContext& context_;
  const int listen_fd_;
  int signal_fd_;  // its address tags the signal in epoll
  const int epoll_fd_;
  Metrics::QueueMetrics queue_metrics_;
  std::vector<pthread_t> workers_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable work_available_;
  std::deque<Connection*> ready_;  // the queue between the two halves
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  bool stopping_ = false;  // the workers', once the drain is over

  OpenConnections open_;
};

}  // namespace

int RunThreadPoolServer(ServerContext& context, int listen_fd, int signal_fd) {
  ThreadPoolServer server(context, listen_fd, signal_fd);
  return server.Run();
}

}  // namespace switchyard
