// The coroutine model: each connection is a C++20 stackless coroutine. Its frame lives on the
// heap and holds only the locals that live across a co_await; a read that would block suspends
// the coroutine and returns to the event loop, which resumes it when epoll says the socket is
// ready. Who runs next is the event loop's choice, in user space. Every thread runs its own
// io_context, and the acceptor deals connections round-robin to them (Asio's io_context_pool), so
// a connection stays on one thread for life and needs no locks. The coroutines are coroutine.h's:
// a frame and the Asio operation it waits on, nothing around them.
#include "servers/coroutine/coroutine_server.h"

#include <asio.hpp>
#include <coroutine>
#include <exception>
#include <iostream>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "servers/common/net.h"
#include "servers/common/open_connections.h"
#include "servers/common/session.h"
#include "servers/coroutine/coroutine.h"

namespace switchyard {
namespace {

class LentRead;

// The buffer a read hands Asio: none yet. Asio asks for the memory only when it performs the read
// (the adapter below), and the read borrows it from the thread at that moment (LentRead::Lend).
struct LentOnRead {
  LentRead* read;
  asio::mutable_buffer Lend() const;
};

}  // namespace
}  // namespace switchyard

// How Asio's socket operations see a LentOnRead: one buffer, never empty, asked for by the read
// itself (reactive_socket_recv_op::do_perform calls first()) each time Asio performs it. Asio's
// generic adapter would also ask when the read starts, to check that it is not empty, and so
// borrow a buffer for the whole wait.
namespace asio::detail {
template <typename Buffer>
class buffer_sequence_adapter<Buffer, switchyard::LentOnRead> : buffer_sequence_adapter_base {
 public:
  enum { is_single_buffer = true };
  enum { is_registered_buffer = false };

  static bool all_empty(const switchyard::LentOnRead&) { return false; }
  static Buffer first(const switchyard::LentOnRead& lent) { return Buffer(lent.Lend()); }

  // The general case, which do_perform compiles but does not take for a single buffer.
  explicit buffer_sequence_adapter(const switchyard::LentOnRead& lent) {
    init_native_buffer(buffer_, first(lent));
  }
  native_buffer_type* buffers() { return &buffer_; }
  std::size_t count() const { return 1; }

 private:
  native_buffer_type buffer_;
};
}  // namespace asio::detail

namespace switchyard {
namespace {

using asio::ip::tcp;

// Typed on the io_context's own executor rather than Asio's default, the type-erased
// any_io_executor: every socket and pending operation carries one, and this one is a pointer.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

// co_await LentRead(socket, session, ec): one read of the socket by Asio's reactor, into the
// session's read space (Session::ReadSpace) borrowed only when Asio performs the read, so that a
// connection waiting for its next request holds no buffer. It resumes with the bytes read, for
// Session::CommitRead, and the error in `ec`.
//
// Asio performs a read as soon as it starts it (the installed Asio stops trying at once only after
// the end of the stream); when that finds nothing, it queues the read without a system call until
// epoll says the socket is ready, and performs it again then. The buffer the first try borrowed
// would be held through the wait, and whether that try found anything shows only when its
// completion runs. So a check is deferred behind that completion, on the same thread's queue: if
// the read has not completed by then, the try found nothing, and the buffer goes back until the
// reactor reads. (Asio's async_wait needs no such check, but costs an epoll_ctl every wait.)
class LentRead {
 public:
  LentRead(Socket& socket, Session& session, std::error_code& ec)
      : socket_(socket), session_(session), ec_(ec) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> coroutine) {
    socket_.async_read_some(LentOnRead{this},
                            [this](const std::error_code& error, std::size_t bytes) {
                              ec_ = error;
                              bytes_ = bytes;
                              completed_ = true;
                              if (waiting_) waiting_.resume();  // else the check resumes it
                            });
    if (!tried_) {  // queued without a try: nothing borrowed
      waiting_ = coroutine;
      return;
    }
    asio::defer(socket_.get_executor(), [this, coroutine] {
      if (completed_) return coroutine.resume();
      session_.CommitRead(0);  // the try found nothing: the buffer goes back while the read waits
      waiting_ = coroutine;
    });
  }
  std::size_t await_resume() const {
    if (failure_) std::rethrow_exception(failure_);
    return bytes_;
  }

  // Called by Asio each time it performs the read, on this connection's thread.
  asio::mutable_buffer Lend() {
    tried_ = true;
    if (failure_) return {};
    try {
      const std::span<char> space = session_.ReadSpace();
      return {space.data(), space.size()};
    } catch (...) {  // the input outgrew memory: rethrown to the coroutine, which then closes
      failure_ = std::current_exception();
      return {};  // an empty read ends the read, as the end of the stream would
    }
  }

 private:
  Socket& socket_;
  Session& session_;
  std::error_code& ec_;
  std::size_t bytes_ = 0;
  bool tried_ = false;
  bool completed_ = false;
  std::coroutine_handle<> waiting_;
  std::exception_ptr failure_;
};

asio::mutable_buffer LentOnRead::Lend() const { return read->Lend(); }

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
            // Asio reads when the socket is ready, into a buffer lent then (LentRead).
            const std::size_t n = co_await LentRead(socket, session, ec);
            suspensions.Increment();
            session.CommitRead(n);  // 0 (an error, the end): its buffer goes back to the thread
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
