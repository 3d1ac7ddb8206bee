// The graceful stop and a failing connection, the same for every RESP model of the registry (the
// shared piece is servers/common/open_connections.h): a SIGTERM delivers every reply owed, a drain
// that runs past --shutdown-timeout exits 1 while the others' replies are still delivered, a
// second signal exits at once, and an exception in one connection's handling closes that
// connection alone, counted and logged. The real binary, real sockets on loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/models.h"
#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Stop : public ::testing::TestWithParam<std::string> {
 protected:
  // prefork with sixteen workers: the default 256 add nothing here but exit time, which under a
  // sanitizer (a leak check in every exiting process) comes near the bounds below.
  void Start(std::vector<std::string> flags, const ServerProcess::Options& options = {}) {
    if (GetParam() == "prefork") flags.insert(flags.end(), {"--workers", "16"});
    server_ = std::make_unique<ServerProcess>(GetParam(), flags, options);
  }
  std::uint16_t port() const { return server_->port(); }

  std::unique_ptr<ServerProcess> server_;
};

// Clients pipeline INCRs without pause while SIGTERM arrives. Every INCR the server ran must have
// had its reply delivered: the replies seen, over all clients, are exactly 1..N with no gap, and
// each connection ends on a whole reply.
TEST_P(Stop, SigtermUnderLoadDeliversEveryOwedReply) {
  constexpr int kClients = 8, kBatch = 50;
  Start({});
  std::vector<std::vector<long long>> seen(kClients);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Client client(port());
      ++ready;
      for (bool open = true; open;) {
        for (int i = 0; i < kBatch; ++i) client.Append({"INCR", "load"});
        for (int i = 0; i < kBatch && open; ++i) {
          Reply reply = client.GetReply();
          if (!reply) {
            open = false;
          } else {
            EXPECT_EQ(reply->type, REDIS_REPLY_INTEGER) << Text(reply.get());
            seen[c].push_back(reply->integer);
          }
        }
      }
    });
  }
  while (ready < kClients) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(300ms);
  const auto signalled = Clock::now();
  EXPECT_EQ(server_->Stop(SIGTERM, 10s), 0) << "clean exit";
  EXPECT_LT(Clock::now() - signalled, 5s);
  for (auto& thread : threads) thread.join();
  std::vector<long long> all;
  for (const auto& values : seen) all.insert(all.end(), values.begin(), values.end());
  std::sort(all.begin(), all.end());
  ASSERT_FALSE(all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i], static_cast<long long>(i + 1)) << "an INCR ran but its reply was lost";
  }
}

// A client that never reads while megabytes of replies are owed holds its connection open past
// the drain deadline: the server gives up on it and exits 1, after --shutdown-timeout and not
// before, and a client with a request in flight at the signal still gets its reply.
TEST_P(Stop, DrainPastTheDeadlineExitsOneAndOthersAreServed) {
  Start({"--shutdown-timeout", "1"}, {.environment = {}, .capture_stderr = true});
  {
    Client setup(port());
    Reply ok = setup.Command({"SET", "big", std::string(1 << 20, 'x')});
    ASSERT_EQ(Text(ok.get()), "OK");
  }
  RawConnection never_reads(port());
  std::string requests;
  for (int i = 0; i < 32; ++i) requests += Multibulk({"GET", "big"});
  never_reads.Send(requests);  // 32 MiB of replies owed; the socket buffers take a few
  RawConnection waiting(port());
  std::this_thread::sleep_for(200ms);
  waiting.Send(Multibulk({"SY.WAIT", "300000"}));  // in flight across the signal
  std::this_thread::sleep_for(100ms);
  const auto signalled = Clock::now();
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  std::string reply;
  EXPECT_TRUE(waiting.ReadUntilClosed(&reply)) << "the drained connection was left open";
  EXPECT_EQ(reply, "+OK\r\n") << "a reply owed to another client was not delivered";
  EXPECT_EQ(server_->Stop(0, 10s), 1) << "exit status after a drain that timed out";
  const auto took = Clock::now() - signalled;
  EXPECT_GE(took, 900ms) << "stopped before --shutdown-timeout";
  EXPECT_LT(took, 8s);
  EXPECT_NE(server_->stderr_text().find("after 1s; stopping anyway"), std::string::npos)
      << server_->stderr_text();
}

TEST_P(Stop, SecondSignalExitsAtOnce) {
  Start({});
  RawConnection waiting(port());
  waiting.Send(Multibulk({"SY.WAIT", "30000000"}));  // owes a reply for 30 s
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(kill(server_->pid(), 0), 0) << "the first signal should drain, not stop at once";
  const auto signalled = Clock::now();
  EXPECT_EQ(server_->Stop(SIGTERM, 5s), 128 + SIGTERM);
  EXPECT_LT(Clock::now() - signalled, 3s);
}

// An exception escaping one connection's handling (the test hook makes ECHO throw, as running
// out of memory mid-request would) closes that connection, is counted and logged; every other
// client goes on being served, and the stop still drains and exits 0.
TEST_P(Stop, ExceptionClosesOnlyItsConnection) {
  Start({}, {.environment = {"SWITCHYARD_TEST_FAIL_ECHO=boom"}, .capture_stderr = true});
  Client other(port());
  ASSERT_EQ(Text(other.Command({"SET", "k", "v"}).get()), "OK");
  RawConnection failing(port());
  failing.Send(Multibulk({"PING"}));
  EXPECT_EQ(failing.ReadSome(7), "+PONG\r\n");
  failing.Send(Multibulk({"ECHO", "boom"}));
  std::string after;
  EXPECT_TRUE(failing.ReadUntilClosed(&after)) << "the failing connection was left open";
  EXPECT_EQ(after, "") << "no reply for the request that failed";
  EXPECT_EQ(Text(other.Command({"GET", "k"}).get()), "v") << "another client lost its server";
  Client fresh(port());
  EXPECT_EQ(Text(fresh.Command({"ECHO", "fine"}).get()), "fine");
  EXPECT_EQ(AwaitMetricAtLeast(server_->metrics_port(), "switchyard_connections_failed_total", 1),
            1);
  EXPECT_EQ(MetricValue(ScrapeMetrics(server_->metrics_port()), "switchyard_connections_active"), 2)
      << "the failed connection is no longer counted open";
  EXPECT_NE(server_->stderr_text().find("ECHO boom failed"), std::string::npos)
      << server_->stderr_text();
  EXPECT_EQ(server_->Stop(SIGTERM, 10s), 0) << "the failed connection does not hold the drain";
}

INSTANTIATE_TEST_SUITE_P(Models, Stop, ::testing::ValuesIn(ModelNames("resp")),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace switchyard::testing
