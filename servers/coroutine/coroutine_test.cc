// coroutine.h without a server: a Detached coroutine runs at once, suspends on an Asio operation,
// resumes from the event loop with the operation's result, and frees its frame when it returns.
#include "servers/coroutine/coroutine.h"

#include <asio.hpp>
#include <chrono>
#include <string>

#include "gtest/gtest.h"

namespace switchyard {
namespace {

using namespace std::chrono_literals;

// Sets *flag when destroyed: lives in the frame, so it says when the frame was freed.
struct Witness {
  bool* flag;
  ~Witness() { *flag = true; }
};

Detached SleepThenRecord(asio::steady_timer& timer, std::error_code& result, bool* freed,
                         std::string* trace) {
  Witness witness{freed};
  *trace += "started ";
  std::error_code ec = asio::error::would_block;
  co_await Completion([&](auto done) { timer.async_wait(std::move(done)); }, ec);
  *trace += "resumed";
  result = ec;
}

TEST(Coroutine, RunsAtOnceThenResumesFromTheLoopAndFreesItsFrame) {
  asio::io_context loop;
  asio::steady_timer timer(loop, 1ms);
  std::error_code result = asio::error::would_block;
  bool freed = false;
  std::string trace;
  const std::int64_t frames_before = live_frame_bytes.load();
  SleepThenRecord(timer, result, &freed, &trace);
  EXPECT_EQ(trace, "started ") << "runs to its first wait inside the call";
  EXPECT_FALSE(freed);
  EXPECT_GT(live_frame_bytes.load(), frames_before) << "its frame is counted while it waits";
  loop.run();
  EXPECT_EQ(trace, "started resumed");
  EXPECT_FALSE(result) << result.message();
  EXPECT_TRUE(freed) << "the frame is freed when the coroutine returns";
  EXPECT_EQ(live_frame_bytes.load(), frames_before) << "and uncounted";
}

TEST(Coroutine, ACancelledWaitResumesWithItsError) {
  asio::io_context loop;
  asio::steady_timer timer(loop, 1h);
  std::error_code result;
  bool freed = false;
  std::string trace;
  SleepThenRecord(timer, result, &freed, &trace);
  asio::post(loop, [&] { timer.cancel(); });
  loop.run();
  EXPECT_EQ(result, asio::error::operation_aborted);
  EXPECT_TRUE(freed);
}

Detached ReadOne(asio::local::stream_protocol::socket& socket, char* byte, std::error_code& ec) {
  co_await Completion(
      [&](auto done) { socket.async_read_some(asio::buffer(byte, 1), std::move(done)); }, ec);
}

TEST(Coroutine, OperationsThatAlsoReturnAValueComplete) {
  asio::io_context loop;
  asio::local::stream_protocol::socket near(loop), far(loop);
  asio::local::connect_pair(near, far);
  char byte = 0;
  std::error_code ec = asio::error::would_block;
  ReadOne(near, &byte, ec);
  asio::write(far, asio::buffer("x", 1));
  loop.run();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(byte, 'x');
}

}  // namespace
}  // namespace switchyard
