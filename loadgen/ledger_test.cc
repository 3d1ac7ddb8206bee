// The shared books (ledger.h), with times given rather than read from the clock: requests taken on
// schedule each with its own intended time and lag, the warm-up not counted, quotas and the end of
// sending honoured, a connection done once idle, a loss booked once, Ctrl-C and the drain, and
// what a thread hands to the live figures.
#include "loadgen/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "loadgen/run.h"

namespace switchyard::loadgen {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// A run starting at 0 (already past, so Begin does not sleep).
LoadConfig TimedRun(double warmup_seconds, double duration_seconds) {
  LoadConfig config;
  config.warmup_seconds = warmup_seconds;
  config.duration_seconds = duration_seconds;
  return config;
}

TEST(ThreadLedger, BeginSetsTheMeasuredWindow) {
  const LoadConfig config = TimedRun(0.5, 2);
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  EXPECT_EQ(thread.warm_end_ns, 500 * kMs);
  EXPECT_EQ(thread.send_end_ns, 2500 * kMs);
  EXPECT_FALSE(thread.Measured(499 * kMs));
  EXPECT_TRUE(thread.Measured(500 * kMs));

  LoadConfig counted = config;
  counted.requests = 10;  // runs until every request is answered, however long
  ThreadLedger by_count(counted, nullptr);
  by_count.Begin(0);
  EXPECT_EQ(by_count.send_end_ns, INT64_MAX);
}

// One second of sending at 1000/s on one connection, from 0.
class OpenLoopSecond : public ::testing::Test {
 protected:
  OpenLoopSecond() {
    thread.Begin(0);
    connection.SetSchedule(Schedule(0, 1000, 0, Schedule::Arrival::kUniform, 1));
  }
  const LoadConfig config = TimedRun(0, 1);
  ThreadLedger thread{config, nullptr};
  ConnectionLedger connection{thread, UINT64_MAX};
};

TEST_F(OpenLoopSecond, TakesEveryDueRequestWithItsOwnIntendedTime) {
  ASSERT_TRUE(connection.open_loop());
  EXPECT_EQ(connection.NextDue(), 0);

  // Woken 2.5 ms late: the three requests due meanwhile go out now, each keeping its own time.
  std::vector<std::int64_t> taken;
  for (std::int64_t intended; connection.TakeDue(5 * kMs / 2, &intended);)
    taken.push_back(intended);
  EXPECT_EQ(taken, (std::vector<std::int64_t>{0, 1 * kMs, 2 * kMs}));
  EXPECT_EQ(connection.NextDue(), 3 * kMs);
  const ThreadStats& stats = thread.stats;
  EXPECT_EQ(stats.sent, 3u);
  EXPECT_EQ(stats.last_send_ns, 5 * kMs / 2);
  EXPECT_EQ(stats.schedule_lag.total(), 3u);
  EXPECT_EQ(stats.max_lag_interval_ns, 5 * kMs / 2);  // the first waited longest

  // Nothing is due before its time.
  std::int64_t intended = -1;
  EXPECT_FALSE(connection.TakeDue(3 * kMs - 1, &intended));
  EXPECT_EQ(intended, -1);
}

TEST_F(OpenLoopSecond, SendsNothingIntendedAtOrAfterTheEndOfSending) {
  std::uint64_t taken = 0;
  for (std::int64_t intended; connection.TakeDue(5000 * kMs, &intended);) ++taken;
  EXPECT_EQ(taken, 1000u);  // 0 ms, 1 ms, ... 999 ms
  EXPECT_FALSE(connection.WantsToSend());
  EXPECT_TRUE(connection.NothingMoreToSend());
  // With nothing in flight it is done, once.
  EXPECT_FALSE(connection.Finish(1));
  EXPECT_TRUE(connection.Finish(0));
  EXPECT_FALSE(connection.Finish(0));
  EXPECT_TRUE(connection.done());
  EXPECT_EQ(thread.done_connections(), 1u);
}

TEST(ConnectionLedger, TheWarmUpIsSentButNotCounted) {
  const LoadConfig config = TimedRun(1, 1);
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  ConnectionLedger connection(thread, UINT64_MAX);
  EXPECT_TRUE(connection.TakeNow(500 * kMs));
  EXPECT_EQ(thread.stats.sent, 0u);
  EXPECT_TRUE(connection.TakeNow(1500 * kMs));
  EXPECT_EQ(thread.stats.sent, 1u);
  EXPECT_EQ(thread.stats.last_send_ns, 1500 * kMs);
  EXPECT_EQ(thread.stats.schedule_lag.total(), 0u);  // closed loop has no schedule to lag
  EXPECT_FALSE(connection.TakeNow(2000 * kMs));      // sending has ended
}

TEST(ConnectionLedger, ClosedLoopSendsItsShareOfTheRequestsExactly) {
  LoadConfig config = TimedRun(0, 1);
  config.requests = 7;
  config.connections = 3;
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  std::uint64_t total = 0;
  for (unsigned c = 0; c < config.connections; ++c) {
    ConnectionLedger connection(thread, ConnectionQuota(config, c));
    std::uint64_t sent = 0;
    while (connection.TakeNow(kMs)) ++sent;
    EXPECT_EQ(sent, c == 0 ? 3u : 2u) << c;
    total += sent;
    EXPECT_TRUE(connection.Finish(0));
  }
  EXPECT_EQ(total, 7u);
  EXPECT_EQ(thread.stats.sent, 7u);
  EXPECT_EQ(thread.done_connections(), 3u);
  EXPECT_EQ(ConnectionQuota(TimedRun(0, 1), 0), UINT64_MAX);
}

TEST(ConnectionLedger, ALossIsBookedOnceAndEndsSending) {
  const LoadConfig config = TimedRun(0, 1);
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  ConnectionLedger first(thread, UINT64_MAX), second(thread, UINT64_MAX);
  EXPECT_TRUE(first.Lose("closed by the server"));
  EXPECT_FALSE(first.Lose("again"));
  EXPECT_TRUE(first.lost());
  EXPECT_FALSE(first.TakeNow(kMs));
  EXPECT_TRUE(second.Lose("reset"));
  EXPECT_EQ(thread.stats.connections_lost, 2u);
  EXPECT_EQ(thread.stats.first_loss, "closed by the server");
  // Done once the replies it still owed are accounted for; a done connection is not lost again.
  EXPECT_FALSE(first.Finish(2));
  EXPECT_TRUE(first.Finish(0));
  EXPECT_FALSE(first.Lose("after the end"));
  EXPECT_EQ(thread.stats.connections_lost, 2u);
}

struct FakeConnection {
  void Abort() { ++aborted; }
  void FinishIfNothingMore() { ++finish_checks; }
  int aborted = 0, finish_checks = 0;
};

TEST(ThreadLedger, TickAbortsOnlyOnceTheDrainIsOver) {
  LoadConfig config = TimedRun(0, 1);
  config.drain_seconds = 0.5;
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  std::vector<std::unique_ptr<FakeConnection>> connections;
  connections.push_back(std::make_unique<FakeConnection>());
  thread.Tick(1200 * kMs, connections);  // sending has ended; replies may still come
  EXPECT_EQ(connections[0]->aborted, 0);
  EXPECT_EQ(connections[0]->finish_checks, 1);
  thread.Tick(1600 * kMs, connections);
  EXPECT_EQ(connections[0]->aborted, 1);
}

TEST(ThreadLedger, CtrlCEndsSendingAtTheNextTick) {
  const LoadConfig config = TimedRun(0, 10);
  ThreadLedger thread(config, nullptr);
  thread.Begin(0);
  ConnectionLedger connection(thread, UINT64_MAX);
  std::vector<std::unique_ptr<FakeConnection>> connections;
  g_stop_requested = true;
  thread.Tick(300 * kMs, connections);
  g_stop_requested = false;
  EXPECT_EQ(thread.send_end_ns, 300 * kMs);
  EXPECT_TRUE(connection.Sending(299 * kMs));
  EXPECT_FALSE(connection.Sending(300 * kMs));
}

TEST(ThreadLedger, PublishesWhatChangedToTheLiveFigures) {
  const LoadConfig config = TimedRun(0, 1);
  LiveStats live;
  ThreadLedger thread(config, &live);
  thread.Begin(0);
  thread.RecordLatencies(200'000, 100'000, 3);
  thread.CountReply(false, 5 * kMs);
  thread.CountReply(false, 6 * kMs);
  thread.CountReply(true, 7 * kMs);
  EXPECT_EQ(thread.stats.last_reply_ns, 7 * kMs);
  EXPECT_EQ(thread.stats.latency.total(), 3u);
  EXPECT_EQ(thread.stats.uncorrected.max(), thread.stats.uncorrected.min());
  thread.Publish();
  EXPECT_EQ(live.ok, 2u);
  EXPECT_EQ(live.errors, 1u);
  EXPECT_EQ(live.latency_interval.total(), 3u);
  EXPECT_TRUE(live.measuring);
  EXPECT_EQ(thread.stats.latency_interval.total(), 0u);  // handed over
  thread.CountReply(false, 8 * kMs);
  thread.Publish();
  EXPECT_EQ(live.ok, 3u);  // only what changed is added
  EXPECT_EQ(live.errors, 1u);
}

TEST(ThreadStats, MergeAddsCountsAndKeepsTheFirstLoss) {
  ThreadStats a, b;
  a.ok = 5;
  a.latency.Record(1000);
  a.last_reply_ns = 10;
  b.ok = 7;
  b.errors = 1;
  b.latency.Record(3000);
  b.last_reply_ns = 20;
  b.connections_lost = 1;
  b.first_loss = "reset";
  ThreadStats total;
  total.MergeTotals(a);
  total.MergeTotals(b);
  EXPECT_EQ(total.ok, 12u);
  EXPECT_EQ(total.errors, 1u);
  EXPECT_EQ(total.latency.total(), 2u);
  EXPECT_EQ(total.last_reply_ns, 20);
  EXPECT_EQ(total.connections_lost, 1u);
  EXPECT_EQ(total.first_loss, "reset");
}

// A run split over workers: every connection of the run belongs to exactly one worker, with the
// quota and seed it would have in one process, so --requests and the rate lose no remainder.
TEST(RunSplit, EveryConnectionOfTheRunHasOneWorker) {
  LoadConfig config = TimedRun(0, 1);
  config.connections = 10;
  config.requests = 1001;
  config.workers = 3;
  std::vector<int> owners(config.connections, 0);
  std::uint64_t requests = 0;
  std::vector<std::uint64_t> seeds;
  for (unsigned worker = 0; worker < config.workers; ++worker) {
    config.worker_index = worker;
    for (unsigned own = 0; own < OwnConnections(config); ++own) {
      const unsigned c = RunConnection(config, own);
      ASSERT_LT(c, config.connections);
      ++owners[c];
      requests += ConnectionQuota(config, c);
      seeds.push_back(ConnectionSeed(config, c));
    }
  }
  EXPECT_EQ(owners, std::vector<int>(config.connections, 1));
  EXPECT_EQ(requests, 1001u);
  std::sort(seeds.begin(), seeds.end());
  EXPECT_EQ(std::unique(seeds.begin(), seeds.end()), seeds.end());
  config.worker_index = 0;
  EXPECT_EQ(OwnConnections(config), 4u);
  config.worker_index = 2;
  EXPECT_EQ(OwnConnections(config), 3u);
  // Another seed, other streams.
  LoadConfig reseeded = config;
  reseeded.seed = 1;
  EXPECT_NE(ConnectionSeed(reseeded, 2), ConnectionSeed(config, 2));
}

TEST(RunSplit, AStartThatHasPassedFails) {
  LoadConfig config = TimedRun(0, 1);
  config.workers = 2;
  config.worker_index = 1;
  config.start_at_unix_ns = UnixNowNs() - 2'000'000'000;
  try {
    StartNs(config);
    ADD_FAILURE() << "a start 2 s ago was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("worker 1 of 2 is 2.0"), std::string::npos) << e.what();
  }
  config.start_at_unix_ns = UnixNowNs() + 500'000'000;
  const std::int64_t start = StartNs(config);
  EXPECT_NEAR(static_cast<double>(start - NowNs()), 5e8, 5e7);
}

}  // namespace
}  // namespace switchyard::loadgen
