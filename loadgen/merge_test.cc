// The merge of a run's workers (merge.h), from results made by hand: what adds up, what is kept,
// and each way results that are not one whole run are refused.
#include "loadgen/merge.h"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include "loadgen/result.h"

namespace switchyard::loadgen {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

// Worker `index` of a run of `workers` at 1000/s over 10 connections, which answered `answered`
// requests in one measured second, each after `latency_ns`.
pb::LoadResult Worker(unsigned index, unsigned workers, std::uint64_t answered,
                      std::uint64_t latency_ns, const std::string& run_id = "run-a") {
  LoadConfig config;
  config.rate = 1000;
  config.connections = 10;
  config.duration_seconds = 1;
  config.workers = workers;
  config.worker_index = index;
  config.seed = 100 + index;
  config.run_id = run_id;
  config.start_at_unix_ns = 1'796'644'800 * kSecond;
  RunTotals run;
  run.warm_end_ns = kSecond;
  run.end_ns = 2 * kSecond;
  run.cpu_seconds = 0.1;
  run.merged.sent = answered;
  run.merged.last_send_ns = 2 * kSecond;
  run.merged.ok = answered;
  run.merged.last_reply_ns = 2 * kSecond;
  for (std::uint64_t i = 0; i < answered; ++i) {
    run.merged.latency.Record(latency_ns + i);
    run.merged.uncorrected.Record(latency_ns);
    run.merged.schedule_lag.Record(1'000);
  }
  return MakeResult(config, run);
}

TEST(MergeResults, TheWorkersOfOneRunAddUpExactly) {
  // 10 connections over 3 workers: 4, 3 and 3 of them, so 400, 300 and 300 requests a second.
  const pb::LoadResult parts[] = {Worker(0, 3, 400, 100'000), Worker(1, 3, 300, 200'000),
                                  Worker(2, 3, 300, 5'000'000)};
  EXPECT_DOUBLE_EQ(parts[0].target_rate() + parts[1].target_rate() + parts[2].target_rate(), 1000);
  // In any order.
  const pb::LoadResult merged = MergeResults({parts[2], parts[0], parts[1]});
  EXPECT_EQ(merged.processes(), 3u);
  EXPECT_EQ(merged.workers(), 3u);
  EXPECT_EQ(merged.run_id(), "run-a");
  EXPECT_EQ(merged.requests(), 1000u);
  EXPECT_DOUBLE_EQ(merged.target_rate(), 1000);
  EXPECT_DOUBLE_EQ(merged.throughput(), 1000);
  EXPECT_DOUBLE_EQ(merged.spec().rate(), 1000);
  EXPECT_EQ(merged.spec().connections(), 10u);
  EXPECT_EQ(merged.spec().threads(), 3u);
  Histogram expected;
  for (const pb::LoadResult& part : parts) expected.Merge(FromProto(part.histogram()));
  EXPECT_EQ(FromProto(merged.histogram()).Buckets(), expected.Buckets());
  EXPECT_EQ(merged.histogram().sum_ns(), expected.sum());
  EXPECT_DOUBLE_EQ(merged.latency().p99(),
                   static_cast<double>(expected.ValueAtPercentile(99)) / 1e9);
  ASSERT_EQ(merged.parts_size(), 3);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(merged.parts(i).worker_index(), i);
    EXPECT_EQ(merged.parts(i).seed(), 100u + i);
    EXPECT_EQ(merged.parts(i).requests(), parts[i].requests());
  }
  EXPECT_EQ(merged.parts(0).connections(), 4u);
  std::ostringstream table;
  PrintResult(table, merged);
  EXPECT_NE(table.str().find("run run-a: merged from its 3 load-generator processes"),
            std::string::npos)
      << table.str();
}

// The message of what MergeResults threw, or "" if it merged.
std::string Refusal(const std::vector<pb::LoadResult>& results) {
  try {
    MergeResults(results, {"w0.json", "w1.json", "w2.json"});
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(MergeResults, RefusesWhatIsNotOneWholeRun) {
  const pb::LoadResult w0 = Worker(0, 3, 400, 100'000), w1 = Worker(1, 3, 300, 100'000),
                       w2 = Worker(2, 3, 300, 100'000);
  EXPECT_EQ(Refusal({w0, w1, w2}), "");
  EXPECT_THROW(MergeResults({}), std::invalid_argument);

  EXPECT_NE(Refusal({w0, w1}).find("worker 2 of the run's 3 is missing"), std::string::npos);
  EXPECT_NE(Refusal({w0, w1, w1}).find("w2.json is worker 1 again (w1.json is too)"),
            std::string::npos)
      << Refusal({w0, w1, w1});
  const pb::LoadResult other_run = Worker(2, 3, 300, 100'000, "run-b");
  EXPECT_NE(Refusal({w0, w1, other_run})
                .find("w2.json is of run 'run-b', w0.json of run 'run-a': results of different "
                      "runs do not merge"),
            std::string::npos);
  EXPECT_NE(Refusal({w0, w1, Worker(2, 4, 300, 100'000)}).find("says its run had 4 workers"),
            std::string::npos);

  pb::LoadResult other_layout = w2;
  other_layout.set_histogram_layout("hdr: 1024 sub-buckets");
  EXPECT_NE(Refusal({w0, w1, other_layout}).find("w2.json has histograms of another geometry"),
            std::string::npos);
  pb::LoadResult other_load = w2;
  other_load.mutable_spec()->set_mix("set:1");
  EXPECT_NE(Refusal({w0, w1, other_load}).find("w2.json was asked for another load than w0.json"),
            std::string::npos);
  EXPECT_NE(Refusal({w0, w1, other_load}).find("mix"), std::string::npos)
      << Refusal({w0, w1, other_load});
  pb::LoadResult later = w2;
  later.set_start_at("2026-12-07T12:00:01Z");
  EXPECT_NE(Refusal({w0, w1, later}).find("started at"), std::string::npos);
  const pb::LoadResult merged = MergeResults({w0, w1, w2});
  EXPECT_NE(Refusal({merged}).find("is a merged result already"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::loadgen
