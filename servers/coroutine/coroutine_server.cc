// The coroutine model: each connection is a C++20 stackless coroutine. Its frame lives on the
// heap and holds only the locals that live across a co_await; a read that would block suspends
// the coroutine and returns to the event loop, which resumes it when epoll says the socket is
// ready. Who runs next is the event loop's choice, in user space. Every thread runs its own
// io_context, and the acceptor deals connections round-robin to them (Asio's io_context_pool), so
// a connection stays on one thread for life and needs no locks. The coroutines are coroutine.h's:
// a frame and the Asio operation it waits on, nothing around them.
#include "servers/coroutine/coroutine_server.h"

#include <asio.hpp>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/session.h"
#include "servers/coroutine/coroutine.h"

namespace switchyard {
namespace {

using asio::ip::tcp;

// Typed on the io_context's own executor rather than Asio's default, the type-erased
// any_io_executor: every socket and pending operation carries one, and this one is a pointer.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

class CoroutineServer {
 public:
  CoroutineServer(ServerContext& context, int listen_fd, int signal_fd)
      : context_(context),
        loops_(context.config.threads),
        open_(context),
        acceptor_(loops_[0].get_executor()),
        signal_(loops_[0].get_executor(), signal_fd),
        drain_deadline_(loops_[0].get_executor()) {
    acceptor_.assign(IsIpv6Socket(listen_fd) ? tcp::v6() : tcp::v4(), listen_fd);
    context.metrics.ExportGaugeReadAtScrape(
        "switchyard_coroutine_frame_bytes",
        "Bytes of the coroutine frames alive: one a connection, as the compiler laid it out",
        [] { return static_cast<double>(live_frame_bytes.load(std::memory_order_relaxed)); });
    for (auto& loop : loops_) {
      keep_running_.emplace_back(loop.get_executor());
      switches_.push_back(&context.metrics.NewUserSwitchCounter());
    }
  }

  int Run() {
    Accept();  // each runs to its first wait; loop 0 resumes them
    AwaitSignal();
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < loops_.size(); ++i)
      threads.emplace_back([this, i] { loops_[i].run(); });
    loops_[0].run();
    for (auto& thread : threads) thread.join();
    return open_.Finish();
  }

 private:
  Detached Accept() {
    for (std::size_t next = 0;; next = (next + 1) % loops_.size()) {
      std::error_code ec;
      Socket socket(loops_[next].get_executor());
      co_await Completion([&](auto done) { acceptor_.async_accept(socket, std::move(done)); }, ec);
      if (open_.stopping()) co_return;
      if (ec) {
        // Out of descriptors (EMFILE) and the like: back off instead of spinning on accept.
        std::cerr << "switchyard: accept failed: " << ec.message() << "\n";
        Timer pause(loops_[0].get_executor(), std::chrono::milliseconds(10));
        co_await Completion([&](auto done) { pause.async_wait(std::move(done)); }, ec);
        continue;
      }
      SetNoDelay(socket.native_handle());
      if (!open_.Admit(socket.native_handle())) continue;  // it closes as it goes out of scope
      // Started on its own loop's thread, where it runs for life.
      asio::post(loops_[next], [this, next, socket = std::move(socket)]() mutable {
        Serve(std::move(socket), next);
      });
    }
  }

  // One connection, start to end. Reads like blocking code; every co_await is a suspension. What
  // escapes its handling closes it alone.
  Detached Serve(Socket socket, std::size_t loop) {
    Metrics::Task task(context_.metrics);  // this coroutine
    Metrics::UserSwitchCounter& suspensions = *switches_[loop];
    std::error_code ec;
    socket.non_blocking(true,
                        ec);  // every read and write is tried first, and waits only if it must
    try {
      Session session(context_);
      bool drained = false;  // the last read did not fill its buffer
      for (bool open = true; open && !ec;) {
        const Session::Step step = session.Process();
        // The replies, all of them, suspending while the socket is full, unless the client owes
        // more than --output-buffer-bytes (Session::OwesTooMuch): then it is dropped.
        for (std::string_view unsent = session.output(); !unsent.empty() && !ec;) {
          unsent.remove_prefix(socket.write_some(asio::buffer(unsent), ec));
          if (ec != asio::error::would_block) continue;
          if (session.OwesTooMuch(socket.native_handle(), unsent.size())) {
            ec = asio::error::no_buffer_space;
            break;
          }
          co_await Completion(
              [&](auto done) { socket.async_wait(Socket::wait_write, std::move(done)); }, ec);
          suspensions.Increment();
        }
        if (ec) break;
        if (!session.output().empty()) session.OutputSent();
        switch (step.next) {
          case Session::Next::kNeedInput: {
            // The coroutine waits for readability holding no buffer, then reads into one it
            // borrows. It waits first only when the last read left the socket drained (a client
            // waiting for its reply sends nothing more); otherwise it reads at once, so a
            // pipeline is read as fast as it comes, and a read that finds nothing costs no
            // system call in the common case. Asio's own reads follow the same rule.
            if (drained) {
              co_await Completion(
                  [&](auto done) { socket.async_wait(Socket::wait_read, std::move(done)); }, ec);
              suspensions.Increment();
              if (ec) break;
            }
            const auto space = session.ReadSpace();
            const std::size_t n = socket.read_some(asio::buffer(space.data(), space.size()), ec);
            session.CommitRead(n);  // 0: its buffer goes back to the thread
            drained = n < space.size();
            if (ec == asio::error::would_block) ec = {};
            break;
          }
          case Session::Next::kFlush:
            break;
          case Session::Next::kWait: {
            // A downstream call: the coroutine suspends on a timer and the thread serves others.
            // The timer is on the heap, so that only a coroutine that sleeps holds one.
            auto timer = std::make_unique<Timer>(socket.get_executor(), step.wait);
            co_await Completion([&](auto done) { timer->async_wait(std::move(done)); }, ec);
            suspensions.Increment();
            session.FinishWait();
            break;
          }
          case Session::Next::kClose:
            open = false;
            break;
        }
      }
    } catch (const std::exception& error) {
      open_.Failed(socket.native_handle(), error);
    }
    open_.Close(socket.release(ec));  // out of the event loop, then closed
  }

  // The graceful stop (OpenConnections): this coroutine waits for the signal, then for the last
  // connection to close or the drain deadline, whichever comes first.
  Detached AwaitSignal() {
    char byte;
    std::error_code ec;
    co_await Completion(
        [&](auto done) { signal_.async_read_some(asio::buffer(&byte, 1), std::move(done)); }, ec);
    if (ec) co_return;
    acceptor_.close(ec);
    // The wake-up is posted to this loop, so it runs once this coroutine waits on the timer.
    open_.StopReading([this] { asio::post(loops_[0], [this] { drain_deadline_.cancel(); }); });
    for (auto& guard : keep_running_) guard.reset();  // each loop ends when its coroutines have
    drain_deadline_.expires_at(open_.deadline());
    co_await Completion([&](auto done) { drain_deadline_.async_wait(std::move(done)); }, ec);
    open_.Finish();  // exits 1 when connections are left
    signal_.close(ec);
  }

  ServerContext& context_;
  std::vector<asio::io_context> loops_;
  OpenConnections open_;
  std::vector<Metrics::UserSwitchCounter*> switches_;  // per loop: one writer each
  std::vector<asio::executor_work_guard<Executor>> keep_running_;
  asio::basic_socket_acceptor<tcp, Executor> acceptor_;
  asio::posix::basic_stream_descriptor<Executor> signal_;
  Timer drain_deadline_;
};

}  // namespace

int RunCoroutineServer(ServerContext& context, int listen_fd, int signal_fd) {
  CoroutineServer server(context, listen_fd, signal_fd);
  return server.Run();
}

}  // namespace switchyard
