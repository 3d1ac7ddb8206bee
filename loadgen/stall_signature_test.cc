#include "loadgen/stall_signature.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "loadgen/merge.h"
#include "loadgen/result.h"

namespace switchyard::loadgen {
namespace {

constexpr std::uint64_t kUs = 1000, kMs = 1'000'000;

// A fast server's body: `count` latencies spread evenly over 30-200 us.
void AddFastBody(Histogram& histogram, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) histogram.Record(30 * kUs + (170 * kUs * i) / count);
}

// `count` latencies where the delayed-ACK timer puts them: 40 ms plus up to 4 ms.
void AddDelayedAckCluster(Histogram& histogram, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) histogram.Record(40 * kMs + (4 * kMs * i) / count);
}

TEST(StallSignatureTest, FiresOnAClusterAtTheDelayedAckTimeoutBesideAFastMedian) {
  Histogram latency;
  AddFastBody(latency, 9800);
  AddDelayedAckCluster(latency, 200);
  const StallSignature stall = DelayedAckStall(latency);
  EXPECT_TRUE(stall.fired);
  EXPECT_DOUBLE_EQ(stall.fraction, 0.02);
  EXPECT_NE(stall.message.find("2.00% of requests (200) took 38-56 ms"), std::string::npos)
      << stall.message;
  EXPECT_NE(stall.message.find("TCP_NODELAY"), std::string::npos) << stall.message;
}

TEST(StallSignatureTest, FiresOnAFewStallsAmongMany) {
  // 0.1% of the requests are enough: they are what p99.9 reads.
  Histogram latency;
  AddFastBody(latency, 99'900);
  AddDelayedAckCluster(latency, 100);
  EXPECT_TRUE(DelayedAckStall(latency).fired);
}

TEST(StallSignatureTest, DoesNotFireOnAServerUniformlySlowAtTheTimeout) {
  Histogram latency;
  for (int i = 0; i < 10'000; ++i) latency.Record(39 * kMs + static_cast<std::uint64_t>(i) * kUs);
  const StallSignature stall = DelayedAckStall(latency);
  EXPECT_FALSE(stall.fired);
  EXPECT_GT(stall.fraction, 0.9);  // the share is still reported
  EXPECT_TRUE(stall.message.empty());
}

TEST(StallSignatureTest, DoesNotFireOnATailThatSpreadsSmoothly) {
  // A 200 ms server stall in an open loop: the requests due in it wait from 200 ms down to 0, as
  // many per millisecond beside the window as in it.
  Histogram stalled;
  AddFastBody(stalled, 10'000);
  for (std::uint64_t i = 0; i < 2000; ++i) stalled.Record(i * 100 * kUs);
  EXPECT_GT(DelayedAckStall(stalled).fraction, 0.001);
  EXPECT_FALSE(DelayedAckStall(stalled).fired);
  // A long exponential tail (a busy machine): fewer requests per millisecond the later, so the
  // band below the window always holds more.
  Histogram exponential;
  std::mt19937_64 random(7);
  std::exponential_distribution<double> tail(1.0 / (8.0 * kMs));
  AddFastBody(exponential, 100'000);
  for (int i = 0; i < 20'000; ++i) exponential.Record(static_cast<std::uint64_t>(tail(random)));
  EXPECT_GT(DelayedAckStall(exponential).fraction, 0.001);
  EXPECT_FALSE(DelayedAckStall(exponential).fired);
}

TEST(StallSignatureTest, DoesNotFireOnTooFewOrOnAClusterElsewhere) {
  Histogram two;
  AddFastBody(two, 1000);
  AddDelayedAckCluster(two, 2);  // 0.2%, but two could be chance
  EXPECT_FALSE(DelayedAckStall(two).fired);

  Histogram rare;
  AddFastBody(rare, 100'000);
  AddDelayedAckCluster(rare, 50);  // 0.05%
  EXPECT_FALSE(DelayedAckStall(rare).fired);

  Histogram at_200ms;  // 200 ms is not this timer
  AddFastBody(at_200ms, 9800);
  for (int i = 0; i < 200; ++i) at_200ms.Record(200 * kMs + static_cast<std::uint64_t>(i) * kUs);
  EXPECT_EQ(DelayedAckStall(at_200ms).fraction, 0);
  EXPECT_FALSE(DelayedAckStall(at_200ms).fired);

  EXPECT_FALSE(DelayedAckStall(Histogram()).fired);
  EXPECT_EQ(DelayedAckStall(Histogram()).fraction, 0);
}

TEST(StallSignatureTest, DoesNotFireWhenTheMedianIsNotFarBelowTheTimeout) {
  Histogram latency;
  for (int i = 0; i < 9000; ++i) latency.Record(5 * kMs);  // above a tenth of 40 ms
  AddDelayedAckCluster(latency, 1000);
  EXPECT_FALSE(DelayedAckStall(latency).fired);
}

// A result carrying `latency` as worker `index` of a run of two would (MakeResult sets the
// signature from it).
pb::LoadResult ResultWith(const Histogram& latency, unsigned index) {
  pb::LoadResult result;
  result.set_processes(1);
  result.set_workers(2);
  result.set_worker_index(index);
  SetHistograms(latency, latency, Histogram(), Histogram(), &result);
  SetDelayedAckStall(latency, &result);
  return result;
}

TEST(StallSignatureTest, MergeRecomputesItFromTheMergedHistogram) {
  // Two stalls in each of two processes: neither result alone has enough to say, the merge does.
  Histogram first, second;
  AddFastBody(first, 1000);
  AddDelayedAckCluster(first, 2);
  AddFastBody(second, 1000);
  AddDelayedAckCluster(second, 2);
  const pb::LoadResult a = ResultWith(first, 0), b = ResultWith(second, 1);
  EXPECT_FALSE(a.delayed_ack_stall());
  EXPECT_FALSE(b.delayed_ack_stall());
  const pb::LoadResult merged = MergeResults({a, b});
  EXPECT_TRUE(merged.delayed_ack_stall());
  EXPECT_DOUBLE_EQ(merged.delayed_ack_stall_fraction(), 4.0 / 2004);
  EXPECT_NE(merged.delayed_ack_stall_message().find("(4) took"), std::string::npos)
      << merged.delayed_ack_stall_message();
  // And a merge of clean results is clean.
  Histogram clean;
  AddFastBody(clean, 1000);
  const pb::LoadResult quiet = MergeResults({ResultWith(clean, 0), ResultWith(clean, 1)});
  EXPECT_FALSE(quiet.delayed_ack_stall());
  EXPECT_EQ(quiet.delayed_ack_stall_fraction(), 0);
  EXPECT_TRUE(quiet.delayed_ack_stall_message().empty());
}

}  // namespace
}  // namespace switchyard::loadgen
