// What is particular to the fiber model, through the real server binary: many fibers parked on
// SY.WAIT at once on few threads, each with its own stack, all answered; and the user-space
// switches that parking costs.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

TEST(FiberServer, AThousandFibersWaitAtOnceAndAllAreAnswered) {
  // A thousand sockets on each side: lift the soft descriptor limit (often 1024) to the hard one
  // before the server starts, so that it inherits it too.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  ServerProcess server("fiber", {"--threads", "2", "--stack-kb", "64"});
  constexpr int kConnections = 1000;
  const std::string wait = "*2\r\n$7\r\nSY.WAIT\r\n$6\r\n500000\r\n";  // 0.5 s each
  const std::string expected = "+OK\r\n$5\r\nfiber\r\n";
  std::vector<std::unique_ptr<RawConnection>> connections;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kConnections; ++i) {
    connections.push_back(std::make_unique<RawConnection>(server.port()));
    connections.back()->Send(wait + "*2\r\n$4\r\nECHO\r\n$5\r\nfiber\r\n");
  }
  // The server accepts in its own time; once it holds every connection, it still runs on a
  // handful of threads: a thousand callers are fibers, not threads.
  std::string during;
  for (int attempt = 0; attempt < 200; ++attempt) {
    during = ScrapeMetrics(server.metrics_port());
    if (MetricValue(during, "switchyard_connections_active") == kConnections) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(MetricValue(during, "switchyard_connections_active"), kConnections);
  EXPECT_LE(MetricValue(during, "switchyard_os_threads"), 8);
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_EQ(connections[i]->ReadSome(expected.size(), 20s), expected) << "connection " << i;
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 500ms);
  // Waited one after another on two threads, they would take 250 s; concurrently they overlap.
  // A bound generous enough for a loaded machine that still fails if a wait held its thread.
  EXPECT_LT(elapsed, 60s);
  const std::string after = ScrapeMetrics(server.metrics_port());
  EXPECT_EQ(MetricValue(after, "switchyard_requests_total{command=\"sy.wait\"}"), kConnections);
  // At least one suspension per fiber for its read and one for its timer.
  EXPECT_GE(MetricValue(after, "switchyard_user_switches_total"), 2 * kConnections);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

TEST(FiberServer, SyBlockStallsEveryFiberOfItsThread) {
  ServerProcess server("fiber", {"--threads", "1"});
  Client blocker(server.port());
  Client bystander(server.port());
  ASSERT_TRUE(bystander.Command({"PING"}));  // its fiber is parked in a read now
  blocker.Append({"SY.BLOCK", "1000000"});
  redisBufferWrite(blocker.context(), nullptr);  // hiredis sends on GetReply otherwise
  std::this_thread::sleep_for(200ms);            // the block has begun
  // SY.BLOCK sleeps in the kernel on the loop's only thread: no fiber of it can run, so the PING
  // waits for the block to end (SY.WAIT, a timer, would not stall it).
  const auto started = std::chrono::steady_clock::now();
  Reply pong = bystander.Command({"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(std::string(pong->str, pong->len), "PONG");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
  Reply ok = blocker.GetReply();
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::string(ok->str, ok->len), "OK");
}

}  // namespace
}  // namespace switchyard::testing
