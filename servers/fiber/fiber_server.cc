// The fiber model: each connection is a stackful fiber (fiber.h) with its own stack, and its code
// is plain blocking code: Read, WriteAll, Sleep. Underneath, every socket is non-blocking; a call
// that would block hands Asio a handler that resumes this fiber, then suspends it, and the thread
// returns to its event loop, which runs whatever else is ready. That handler is the whole
// scheduler: a fiber runs again when Asio says what it waits for has happened. Every thread runs
// its own io_context and a connection stays on one thread for life, so nothing needs a lock. The
// accept loop and the signal watcher are fibers too.
#include "servers/fiber/fiber_server.h"

#include <asio.hpp>
#include <iostream>
#include <span>
#include <thread>
#include <vector>

#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/session.h"
#include "servers/fiber/fiber.h"

namespace switchyard {
namespace {

using asio::ip::tcp;

// One event-loop thread and what only that thread touches.
struct Loop {
  asio::io_context io;
  Metrics::UserSwitchCounter* switches = nullptr;
};

thread_local Loop* t_loop = nullptr;

// Runs `fiber` until it suspends again; frees it once it has returned.
void RunFiber(Fiber* fiber) {
  if (!fiber->Resume()) delete fiber;
}

// The one way a fiber waits: `start_wait(resume)` starts an Asio operation whose completion
// handler is `resume`, and the fiber sleeps until the loop runs that handler.
template <typename StartWait>
void WaitFor(StartWait start_wait) {
  Fiber* self = Fiber::Current();
  start_wait([self](const std::error_code&) { RunFiber(self); });
  t_loop->switches->Increment();
  self->Suspend();
}

// Blocking-style I/O for fibers, on non-blocking sockets.
template <typename Stream>
std::size_t Read(Stream& stream, std::span<char> into, std::error_code& ec) {
  for (;;) {
    const std::size_t n = stream.read_some(asio::buffer(into.data(), into.size()), ec);
    if (ec != asio::error::would_block) return n;
    WaitFor([&](auto resume) { stream.async_wait(Stream::wait_read, std::move(resume)); });
  }
}

// Writes all of `data`, parking the fiber while the socket is full, unless the client owes more
// than --output-buffer-bytes (Session::OwesTooMuch): then it fails, and the client is dropped.
void WriteAll(tcp::socket& socket, std::string_view data, Session& session, std::error_code& ec) {
  while (!data.empty()) {
    const std::size_t n = socket.write_some(asio::buffer(data), ec);
    if (ec == asio::error::would_block) {
      if (session.OwesTooMuch(socket.native_handle(), data.size())) {
        ec = asio::error::no_buffer_space;
        return;
      }
      WaitFor([&](auto resume) { socket.async_wait(tcp::socket::wait_write, std::move(resume)); });
    } else if (ec) {
      return;
    }
    data.remove_prefix(n);
  }
}

void Sleep(asio::steady_timer& timer) {
  WaitFor([&](auto resume) { timer.async_wait(std::move(resume)); });
}

class FiberServer {
 public:
  FiberServer(ServerContext& context, int listen_fd, int signal_fd)
      : context_(context),
        stack_bytes_(
            (context.config.stack_kb != 0 ? context.config.stack_kb : kDefaultFiberStackKb) * 1024),
        loops_(context.config.threads),
        open_(context),
        acceptor_(loops_[0].io),
        signal_(loops_[0].io, signal_fd),
        drain_deadline_(loops_[0].io) {
    signal_.non_blocking(true);
    acceptor_.assign(IsIpv6Socket(listen_fd) ? tcp::v6() : tcp::v4(), listen_fd);
    acceptor_.non_blocking(true);
    for (auto& loop : loops_) {
      loop.switches = &context.metrics.NewUserSwitchCounter();
      keep_running_.emplace_back(loop.io.get_executor());
    }
  }

  int Run() {
    Spawn(0, [this] { AcceptConnections(); });
    Spawn(0, [this] { AwaitSignal(); });
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < loops_.size(); ++i) threads.emplace_back([this, i] { RunLoop(i); });
    RunLoop(0);
    for (auto& thread : threads) thread.join();
    return open_.Finish();
  }

 private:
  void RunLoop(std::size_t i) {
    t_loop = &loops_[i];
    InstallStackOverflowReporter();
    loops_[i].io.run();
  }

  // Starts a fiber on loop `i`: it first runs when that loop gets to it.
  template <typename Body>
  void Spawn(std::size_t i, Body body) {
    asio::post(loops_[i].io, [this, body = std::move(body)]() mutable {
      RunFiber(new Fiber(stack_bytes_, std::move(body)));
    });
  }

  void AcceptConnections() {
    for (std::size_t next = 0;; next = (next + 1) % loops_.size()) {
      std::error_code ec;
      tcp::socket socket = acceptor_.accept(loops_[next].io, ec);
      while (ec == asio::error::would_block && !open_.stopping()) {
        WaitFor([&](auto resume) { acceptor_.async_wait(tcp::acceptor::wait_read, resume); });
        socket = acceptor_.accept(loops_[next].io, ec);
      }
      if (open_.stopping()) return;
      if (ec) {
        // Out of descriptors (EMFILE) and the like: back off instead of spinning on accept.
        std::cerr << "switchyard: accept failed: " << ec.message() << "\n";
        asio::steady_timer pause(loops_[0].io, std::chrono::milliseconds(10));
        Sleep(pause);
        continue;
      }
      SetNoDelay(socket.native_handle());
      if (!open_.Admit(socket.native_handle())) continue;  // it closes as it goes out of scope
      Spawn(next, [this, socket = std::move(socket)]() mutable { Serve(socket); });
    }
  }

  // One connection, start to end, on its own fiber. Reads like thread_per_conn's blocking loop.
  void Serve(tcp::socket& socket) {
    Metrics::Task task(context_.metrics);  // this fiber
    std::error_code ec;
    socket.non_blocking(true, ec);
    try {
      Session session(context_);
      for (bool open = !ec; open;) {
        const Session::Step step = session.Process();
        if (!session.output().empty()) {
          WriteAll(socket, session.output(), session, ec);
          if (ec) break;
          session.OutputSent();
        }
        switch (step.next) {
          case Session::Next::kNeedInput: {
            // Read what is there; only when nothing is does the fiber park, and then without a
            // buffer (CommitRead(0) gave it back): it waits for readability alone.
            const auto space = session.ReadSpace();
            const std::size_t n = socket.read_some(asio::buffer(space.data(), space.size()), ec);
            session.CommitRead(n);
            if (ec == asio::error::would_block) {
              WaitFor([&](auto resume) {
                socket.async_wait(tcp::socket::wait_read, std::move(resume));
              });
              ec = {};
            } else if (ec) {
              open = false;  // end of file included
            }
            break;
          }
          case Session::Next::kFlush:
            break;
          case Session::Next::kWait: {
            // A downstream call: the fiber sleeps on a timer and the thread serves others.
            asio::steady_timer timer(t_loop->io, step.wait);
            Sleep(timer);
            session.FinishWait();
            break;
          }
          case Session::Next::kClose:
            open = false;
            break;
        }
      }
    } catch (const std::exception& error) {  // out of memory, say: drop this client alone
      open_.Failed(socket.native_handle(), error);
    }
    open_.Close(socket.release(ec));  // out of the event loop, then closed
  }

  // The graceful stop (OpenConnections): this fiber waits for the signal, then for the last
  // connection to close or the drain deadline, whichever comes first.
  void AwaitSignal() {
    char byte;
    std::error_code ec;
    Read(signal_, std::span<char>(&byte, 1), ec);
    acceptor_.close(ec);  // wakes the accept fiber, which sees the stop and returns
    // The wake-up is posted to this loop, so it runs once this fiber sleeps on the timer.
    open_.StopReading([this] { asio::post(loops_[0].io, [this] { drain_deadline_.cancel(); }); });
    for (auto& guard : keep_running_) guard.reset();  // each loop ends when its fibers have
    drain_deadline_.expires_at(open_.deadline());
    Sleep(drain_deadline_);
    open_.Finish();  // exits 1 when connections are left: their fibers are suspended mid-call
  }

  ServerContext& context_;
  const std::size_t stack_bytes_;
  std::vector<Loop> loops_;
  OpenConnections open_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
  tcp::acceptor acceptor_;
  asio::posix::stream_descriptor signal_;
  asio::steady_timer drain_deadline_;
};

}  // namespace

int RunFiberServer(ServerContext& context, int listen_fd, int signal_fd) {
  FiberServer server(context, listen_fd, signal_fd);
  return server.Run();
}

}  // namespace switchyard
