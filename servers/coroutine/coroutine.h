// The two pieces a coroutine per connection needs on Asio's event loop, and nothing more:
//
// - Detached: a C++20 coroutine that starts at once, runs on its own and frees its frame when it
//   returns. A connection is one.
// - Completion: co_await suspends the coroutine until one Asio operation completes; the operation's
//   completion handler is the coroutine's handle, which resumes it.
//
// Asio ships its own (asio::awaitable with co_spawn and use_awaitable), but it wraps each coroutine
// in a second frame, each wait in a third frame plus a handler that carries an executor, and
// resumes through its own scheduler: with thousands of idle connections, that plumbing cost more
// memory per connection than the coroutine itself. Here a suspended connection is its frame and
// the one operation it waits on, as in switchcost's measure of a bare coroutine.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <system_error>
#include <utility>

namespace switchyard {

// Bytes of every Detached frame alive in the process. The compiler decides a frame's size, so it is
// counted where frames are allocated; the server exports it (switchyard_coroutine_frame_bytes).
inline std::atomic<std::int64_t> live_frame_bytes{0};

struct Detached {
  struct promise_type {
    // The frame's size is known only to its operator new, which runs just before the promise
    // is built inside it, on the same thread; the promise keeps it, and uncounts it when the
    // frame is destroyed. (An operator delete taking the size would do, but GCC 12 mistakes it for
    // a mismatch with operator new: -Wmismatched-new-delete.)
    static void* operator new(std::size_t bytes) {
      void* frame = ::operator new(bytes);
      allocated_bytes = bytes;
      live_frame_bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
      return frame;
    }
    static void operator delete(void* frame) noexcept { ::operator delete(frame); }
    promise_type() noexcept : frame_bytes(allocated_bytes) {}
    ~promise_type() {
      live_frame_bytes.fetch_sub(static_cast<std::int64_t>(frame_bytes), std::memory_order_relaxed);
    }
    promise_type(const promise_type&) = delete;
    promise_type& operator=(const promise_type&) = delete;

    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }  // the frame frees itself
    void return_void() noexcept {}
    // A body lets nothing escape (a connection catches what ends it); anything that does is a
    // bug, and ends the process as an exception leaving a thread would.
    void unhandled_exception() noexcept { std::terminate(); }

    static thread_local std::size_t allocated_bytes;
    const std::size_t frame_bytes;
  };
};

// co_await Completion(start, ec) calls start(handler), which starts one Asio operation with
// `handler` as its completion handler, and suspends; when the event loop runs the handler, the
// operation's error lands in `ec` and the coroutine resumes there, on the loop's thread. Asio
// never runs a handler inside the call that starts its operation, so the coroutine is suspended
// by then.
template <typename Start>
class Completion {
 public:
  Completion(Start start, std::error_code& ec) : start_(std::move(start)), ec_(ec) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> coroutine) {
    start_([coroutine, &ec = ec_](const std::error_code& error, auto&&...) {
      ec = error;  // before the resumption, which may end the coroutine and free `ec`
      coroutine.resume();
    });
  }
  void await_resume() const noexcept {}

 private:
  Start start_;
  std::error_code& ec_;
};

inline thread_local std::size_t Detached::promise_type::allocated_bytes = 0;

}  // namespace switchyard
