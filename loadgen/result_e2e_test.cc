// End-to-end, the result: what it says about a run beyond its latencies (a delayed-ACK stall
// named, the client's CPU taken by other work), and `load merge` adding two runs exactly.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "loadgen/e2e_support.h"
#include "loadgen/histogram.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using switchyard::testing::RunBinary;

// Nagle left on in a server shows as the delayed-ACK stall signature; our own models set
// TCP_NODELAY and do not show it. Closed loop, one request in flight a connection: once a split
// reply's first part is read, the client has nothing to send until the rest comes, so only its
// delayed-ACK timer releases it. (In an open loop the client's next request carries the ACK, or,
// with gaps longer than the timer, the kernel acknowledges at once on the read, not being in
// "ping-pong" mode: a stall then ends early and does not gather at 40 ms.)
TEST_F(LoadE2eTest, ANagleStallIsNamedAndOurServerHasNone) {
  CannedResponder nagle("PING\r\n", "+PONG\r\n", 4);
  const pb::LoadResult stalled =
      Load(nagle.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nagle");
  EXPECT_EQ(stalled.failed(), 0u);
  EXPECT_TRUE(stalled.delayed_ack_stall()) << stalled.delayed_ack_stall_fraction() << "\n"
                                           << last_output_;
  // About one reply in four waited for the delayed ACK, and the median did not.
  EXPECT_GT(stalled.delayed_ack_stall_fraction(), 0.1) << last_output_;
  EXPECT_LT(stalled.latency().p50(), 0.004) << last_output_;
  EXPECT_NE(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;

  switchyard::testing::ServerProcess server("coroutine");
  const pb::LoadResult clean = Load(
      server.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nodelay");
  EXPECT_EQ(clean.failed(), 0u);
  EXPECT_FALSE(clean.delayed_ack_stall()) << clean.delayed_ack_stall_message();
  EXPECT_TRUE(clean.delayed_ack_stall_message().empty());
  EXPECT_EQ(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;
}

// A load generator that shares its CPU with a busy process waits for it, and lags its schedule for
// that reason alone: the result says how long its threads waited for the CPU, and a run flagged
// for lag says that other work held it (the machine, not the load generator's code).
TEST_F(LoadE2eTest, ACpuSharedWithABusyProcessShowsAsRunQueueWait) {
  RedisServer redis;
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof original, &original), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = CPU_SETSIZE - 1; cpu >= 0; --cpu) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  const pid_t spinner = fork();
  if (spinner == 0) {  // busy on that CPU for at most 10 s, killed sooner
    sched_setaffinity(0, sizeof one, &one);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
    }
    _exit(0);
  }
  // The load generator inherits this thread's CPU set.
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const pb::LoadResult result =
      Load(redis.port(), {"--rate", "2000", "-d", "1s", "--warmup", "200ms", "-c", "8"}, "shared");
  sched_setaffinity(0, sizeof original, &original);
  kill(spinner, SIGKILL);
  waitpid(spinner, nullptr, 0);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_GT(result.client_run_queue_wait_seconds(), 0.01) << last_output_;
  if (result.client_limited()) {
    EXPECT_NE(result.client_limited_reason().find("held by other work"), std::string::npos)
        << result.client_limited_reason();
  }
}

TEST_F(LoadE2eTest, MergeOfTwoRunsIsExact) {
  RedisServer redis;
  const std::string a = TempFile("a.json"), b = TempFile("b.json"), merged = TempFile("m.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "--port", std::to_string(redis.port()), "-n", "1500", "--warmup",
                       "0", "-c", "3", "-q", "--json", a},
                      &output),
            0)
      << output;
  ASSERT_EQ(RunBinary({"load", "--port", std::to_string(redis.port()), "--rate", "1000", "-d",
                       "500ms", "--warmup", "0", "-c", "2", "-q", "--json", b},
                      &output),
            0)
      << output;
  ASSERT_EQ(RunBinary({"load", "merge", a, b, "--json", merged}, &output), 0) << output;
  EXPECT_NE(output.find("merged from 2 load-generator processes"), std::string::npos) << output;
  const pb::LoadResult ra = ReadResultFile(a), rb = ReadResultFile(b), rm = ReadResultFile(merged);
  EXPECT_EQ(rm.requests(), ra.requests() + rb.requests());
  EXPECT_EQ(rm.processes(), 2u);
  Histogram expected = FromProto(ra.histogram());
  expected.Merge(FromProto(rb.histogram()));
  const Histogram got = FromProto(rm.histogram());
  EXPECT_EQ(got.Buckets(), expected.Buckets());
  EXPECT_EQ(got.max(), expected.max());
  EXPECT_DOUBLE_EQ(rm.latency().p99(), static_cast<double>(expected.ValueAtPercentile(99)) / 1e9);
  // The open-loop run's reply pickup survives the merge (the closed-loop one has none).
  EXPECT_GT(rb.histogram_reply_pickup().total(), 0u);
  EXPECT_EQ(FromProto(rm.histogram_reply_pickup()).Buckets(),
            FromProto(rb.histogram_reply_pickup()).Buckets());
  EXPECT_DOUBLE_EQ(rm.reply_pickup().max(), rb.reply_pickup().max());
  // A merge keeps the noisiest machine's steal.
  EXPECT_DOUBLE_EQ(rm.machine_steal_fraction(),
                   std::max(ra.machine_steal_fraction(), rb.machine_steal_fraction()));
}

}  // namespace
}  // namespace switchyard::loadgen
