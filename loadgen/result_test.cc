// The result (result.h) from a run's totals given by hand: the figures, the reasons a run is
// flagged as the load generator's limit rather than the server's, exact histogram conversions,
// and what a worker of a run spread over processes records.
#include "loadgen/result.h"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

namespace switchyard::loadgen {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

// One thread ran one measured second, sent `sent` (each 20 us behind its schedule) and had
// `answered` answered, 10 of them errors.
RunTotals OneSecond(std::uint64_t sent, std::uint64_t answered, double cpu_seconds) {
  RunTotals run;
  run.threads = 1;
  run.warm_end_ns = kSecond;
  run.end_ns = 2 * kSecond;
  run.cpu_seconds = cpu_seconds;
  run.merged.sent = sent;
  run.merged.last_send_ns = 2 * kSecond;
  run.merged.ok = answered - 10;
  run.merged.errors = 10;
  run.merged.last_reply_ns = 2 * kSecond;
  for (std::uint64_t i = 0; i < answered; ++i) {
    run.merged.latency.Record(100'000);
    run.merged.uncorrected.Record(80'000);
  }
  for (std::uint64_t i = 0; i < sent; ++i) run.merged.schedule_lag.Record(20'000);
  return run;
}

LoadConfig OpenLoop(double rate) {
  LoadConfig config;
  config.rate = rate;
  config.duration_seconds = 1;
  config.warmup_seconds = 1;
  return config;
}

TEST(MakeResult, FiguresOfAnOpenLoopRunThatKeptUp) {
  const pb::LoadResult result = MakeResult(OpenLoop(1000), OneSecond(1000, 1000, 0.1));
  EXPECT_EQ(result.requests(), 1000u);
  EXPECT_EQ(result.errors(), 10u);
  EXPECT_DOUBLE_EQ(result.duration_seconds(), 1);
  EXPECT_DOUBLE_EQ(result.throughput(), 1000);
  EXPECT_DOUBLE_EQ(result.sent_rate(), 1000);
  EXPECT_EQ(result.histogram().total(), 1000u);
  EXPECT_EQ(result.processes(), 1u);
  EXPECT_EQ(result.spec().arrival(), "uniform");
  EXPECT_FALSE(result.client_limited()) << result.client_limited_reason();
}

TEST(MakeResult, ALaggingScheduleFlagsTheClient) {
  RunTotals run = OneSecond(1000, 1000, 0.1);
  for (int i = 0; i < 1000; ++i) run.merged.schedule_lag.Record(2'000'000);  // half late
  run.merged.run_queue_wait_ns = 50'000'000;
  const pb::LoadResult result = MakeResult(OpenLoop(1000), run);
  EXPECT_TRUE(result.client_limited());
  EXPECT_NE(result.client_limited_reason().find("p99 schedule lag 2."), std::string::npos)
      << result.client_limited_reason();
  // Other work held its CPU: said, since it is the machine rather than the load generator.
  EXPECT_NE(result.client_limited_reason().find("held by other work"), std::string::npos);
  EXPECT_DOUBLE_EQ(result.client_run_queue_wait_seconds(), 0.05);
}

TEST(MakeResult, SendingShortOfTheRateFlagsTheClient) {
  const pb::LoadResult result = MakeResult(OpenLoop(1000), OneSecond(500, 500, 0.1));
  EXPECT_TRUE(result.client_limited());
  EXPECT_NE(result.client_limited_reason().find("sent 500/s of the 1000/s asked"),
            std::string::npos)
      << result.client_limited_reason();
}

TEST(MakeResult, ABusyClientIsFlaggedUnlessItBusyPollsOnPurpose) {
  LoadConfig closed;
  closed.duration_seconds = 1;
  const pb::LoadResult busy = MakeResult(closed, OneSecond(1000, 1000, 0.95));
  EXPECT_NEAR(busy.client_busy_fraction(), 0.95, 1e-9);
  EXPECT_TRUE(busy.client_limited());
  EXPECT_NE(busy.client_limited_reason().find("client CPU at 95%"), std::string::npos)
      << busy.client_limited_reason();
  closed.busy_poll = true;
  EXPECT_FALSE(MakeResult(closed, OneSecond(1000, 1000, 0.95)).client_limited());
}

TEST(Histograms, ConvertExactlyAndRefuseATotalTheBucketsDoNotMake) {
  Histogram histogram;
  for (std::uint64_t value : {1'000u, 2'500u, 1'000'000u, 42u}) histogram.Record(value);
  pb::Histogram message;
  ToProto(histogram, &message);
  const Histogram back = FromProto(message);
  EXPECT_EQ(back.Buckets(), histogram.Buckets());
  EXPECT_EQ(back.min(), histogram.min());
  EXPECT_EQ(back.max(), histogram.max());
  EXPECT_EQ(back.sum(), histogram.sum());
  message.set_total(message.total() + 1);
  EXPECT_THROW(FromProto(message), std::runtime_error);
}

TEST(MakeResult, AWorkerSaysWhichPartOfWhichRunItIs) {
  LoadConfig config = OpenLoop(1000);
  config.connections = 50;
  config.workers = 3;
  config.worker_index = 2;  // connections 2, 5, ..., 47: 16 of the 50
  config.seed = 42;
  config.run_id = "run-a";
  config.start_at_unix_ns = 1'796'644'800'250'000'000;
  const pb::LoadResult result = MakeResult(config, OneSecond(320, 320, 0.1));
  EXPECT_EQ(result.worker_index(), 2u);
  EXPECT_EQ(result.workers(), 3u);
  EXPECT_EQ(result.worker_connections(), 16u);
  EXPECT_DOUBLE_EQ(result.target_rate(), 1000.0 * 16 / 50);
  EXPECT_EQ(result.spec().connections(), 50u);  // the run's, as asked
  EXPECT_EQ(result.seed(), 42u);
  EXPECT_EQ(result.run_id(), "run-a");
  EXPECT_EQ(result.start_at(), "2026-12-07T12:00:00.25Z");
  EXPECT_EQ(result.histogram_layout(), Histogram::kLayout);
  std::ostringstream table;
  PrintResult(table, result);
  EXPECT_NE(table.str().find("run run-a: worker 2 of 3, seed 42"), std::string::npos)
      << table.str();
  EXPECT_NE(table.str().find("16 of the run's 50 connections on 1 thread"), std::string::npos)
      << table.str();
}

TEST(FormatSeconds, ThreeSignificantDigitsInAFittingUnit) {
  EXPECT_EQ(FormatSeconds(45.2e-6), "45.2us");
  EXPECT_EQ(FormatSeconds(1.234e-3), "1.23ms");
  EXPECT_EQ(FormatSeconds(1.5), "1.5s");
}

}  // namespace
}  // namespace switchyard::loadgen
