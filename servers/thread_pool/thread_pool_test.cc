// What is particular to the thread pool: a blocking request holds one worker while the others
// keep serving, and when every worker is held, ready connections wait in the queue, which the
// queue metrics show. Real server process, real sockets.
#include <gtest/gtest.h>

#include <thread>

#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

// Waits until workers have taken `count` connections off the queue in all (each take is one
// queue-wait observation), so the test knows a request is in a worker's hands.
bool WaitForTakes(const ServerProcess& server, double count) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_queue_wait_seconds_count") >=
        count)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(ThreadPool, BlockingRequestHoldsOneWorkerAndTheQueueGrowsWhenAllAreHeld) {
  ServerProcess server("thread_pool", {"--workers", "2"});
  const std::string kBlock = "*2\r\n$8\r\nSY.BLOCK\r\n$7\r\n3000000\r\n";  // 3 s in the kernel
  const auto takes = [&server] {
    return MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_queue_wait_seconds_count");
  };

  double taken = takes();
  RawConnection first_blocked(server.port());
  first_blocked.Send(kBlock);
  ASSERT_TRUE(WaitForTakes(server, taken + 1));
  {
    Client other(server.port());  // served by the one free worker meanwhile
    for (int i = 0; i < 20; ++i) {
      Reply reply = other.Command({"PING"});
      ASSERT_TRUE(reply);
      ASSERT_EQ(reply->type, REDIS_REPLY_STATUS);
    }
  }
  EXPECT_EQ(first_blocked.ReadSome(5, 0ms), "") << "the blocked request answered early";

  // Hold the second worker too: a ready connection now has to wait in the queue.
  taken = takes();
  RawConnection second_blocked(server.port());
  second_blocked.Send(kBlock);
  ASSERT_TRUE(WaitForTakes(server, taken + 1));
  const double waits_before = takes();
  RawConnection queued(server.port());
  queued.Send("PING\r\n");
  std::string during;
  for (int attempt = 0; attempt < 200; ++attempt) {
    during = ScrapeMetrics(server.metrics_port());
    if (MetricValue(during, "switchyard_queue_depth") == 1) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(MetricValue(during, "switchyard_queue_depth"), 1) << during;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(queued.ReadSome(7, 0ms), "") << "served while every worker was blocked";

  // When the first block ends, its worker takes the queued PING.
  EXPECT_EQ(queued.ReadSome(7, 10s), "+PONG\r\n");
  EXPECT_EQ(first_blocked.ReadSome(5, 10s), "+OK\r\n");
  EXPECT_EQ(second_blocked.ReadSome(5, 10s), "+OK\r\n");
  const std::string after = ScrapeMetrics(server.metrics_port());
  EXPECT_EQ(MetricValue(after, "switchyard_queue_depth"), 0);
  EXPECT_GT(MetricValue(after, "switchyard_queue_wait_seconds_count"), waits_before);
  // The PING waited at least the 300 ms we slept after seeing it queued.
  EXPECT_GE(MetricValue(after, "switchyard_queue_wait_seconds_sum"), 0.3) << after;
  EXPECT_EQ(MetricValue(after, "switchyard_requests_total{command=\"sy.block\"}"), 2);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace switchyard::testing
