// End-to-end, the command: live metrics while a run goes on, the sweep to the knee, and the
// one-line errors a bad command line or a bad file gets.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "loadgen/e2e_support.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using switchyard::testing::FreeLoopbackPort;
using switchyard::testing::RunBinary;

TEST_F(LoadE2eTest, LiveMetricsDuringTheRun) {
  RedisServer redis;
  const std::string scrape = ScrapeDuringARun(redis.port());
  using switchyard::testing::MetricValue;
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_requests_total{worker=\"0\",outcome=\"ok\"}"),
            0)
      << scrape;
  EXPECT_EQ(MetricValue(scrape, "switchyard_loadgen_target_rate{worker=\"0\"}"), 500) << scrape;
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_latency_seconds_count{worker=\"0\"}"), 0)
      << scrape;
  EXPECT_GE(MetricValue(scrape, "switchyard_loadgen_schedule_lag_seconds{worker=\"0\"}"), 0)
      << scrape;
}

// Reads a sweep's JSON (a SweepResult, not a LoadResult).
pb::SweepResult ReadSweep(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  pb::SweepResult sweep;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &sweep).ok()) << text.str();
  return sweep;
}

// Every run a sweep made is kept in rising order of rate, and each is one of its decisions' runs.
void ExpectRunsMatchDecisions(const pb::SweepResult& sweep) {
  std::map<double, int> runs_at;
  for (int i = 0; i < sweep.steps_size(); ++i) {
    ++runs_at[sweep.steps(i).target_rate()];
    if (i > 0) {
      EXPECT_GE(sweep.steps(i).target_rate(), sweep.steps(i - 1).target_rate());
    }
  }
  for (const auto& decision : sweep.decisions()) {
    EXPECT_EQ(runs_at[decision.rate()],
              decision.observed_seconds_size() + static_cast<int>(decision.client_limited_runs()))
        << decision.rate();
  }
}

TEST_F(LoadE2eTest, SweepStepsUpToThePeakAndStopsAtTheSlo) {
  RedisServer redis;
  const std::string port = std::to_string(redis.port());
  // An SLO nothing can meet: the first step misses it, the climb stops there, the rate is halved
  // four times looking for a knee below it, and no rate qualifies.
  const std::string strict = TempFile("strict.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "--port", port, "--sweep", "--sweep-steps", "4", "--slo", "99:1us",
                       "-d", "300ms", "--warmup", "0", "-c", "4", "-q", "--json", strict},
                      &output),
            0)
      << output;
  const pb::SweepResult missed = ReadSweep(strict);
  EXPECT_GT(missed.peak_throughput(), 0);
  ExpectRunsMatchDecisions(missed);
  // On a busy machine a step may instead stay limited by the client, which ends the sweep early:
  // either way no rate is counted as meeting the objective.
  EXPECT_EQ(missed.highest_rate_meeting_slo(), 0);
  ASSERT_GE(missed.decisions_size(), 1) << output;
  for (int i = 0; i < missed.decisions_size(); ++i) {
    EXPECT_NEAR(missed.decisions(i).rate(), missed.peak_throughput() / 4 / (1 << i), 1) << i;
    EXPECT_EQ(missed.decisions(i).phase(), i == 0 ? "climb" : "halving");
  }
  if (missed.decisions(missed.decisions_size() - 1).verdict() != "client-limited") {
    EXPECT_EQ(missed.decisions_size(), 5) << output;
  }
  // Under a sanitizer the load generator itself may lag every run: then no run is the server's.
  EXPECT_TRUE(output.find("missed") != std::string::npos ||
              output.find("CLIENT-LIMITED") != std::string::npos)
      << output;

  // A lenient SLO with every deciding step run twice: the climb rises by half the peak and meets
  // it all the way, so the knee is "at least" the peak, and the last rate is confirmed.
  const std::string lenient = TempFile("lenient.json");
  ASSERT_EQ(RunBinary({"load", "--port", port, "--sweep", "--sweep-steps", "2", "--sweep-runs", "2",
                       "--slo", "99:5s", "-d", "300ms", "--warmup", "0", "-c", "4", "-q", "--json",
                       lenient},
                      &output),
            0)
      << output;
  const pb::SweepResult swept = ReadSweep(lenient);
  ExpectRunsMatchDecisions(swept);
  EXPECT_EQ(swept.runs_per_step(), 2u);
  ASSERT_GE(swept.decisions_size(), 1) << output;
  EXPECT_NEAR(swept.decisions(0).rate(), swept.peak_throughput() / 2, 1);
  if (swept.decisions_size() == 2 && swept.decisions(1).verdict() == "met") {
    EXPECT_NEAR(swept.highest_rate_meeting_slo(), swept.peak_throughput(), 1);
    EXPECT_EQ(swept.decisions(1).observed_seconds_size(), 2) << "the knee's rate is confirmed";
    EXPECT_TRUE(swept.knee_is_lower_bound());
    EXPECT_NE(output.find("the knee is at least"), std::string::npos) << output;
  }
  EXPECT_EQ(swept.lowest_rate_missing_slo(), 0) << "nothing misses a 5 s objective";
}

TEST_F(LoadE2eTest, BadInputGetsAOneLineError) {
  std::string output;
  const std::uint16_t closed = FreeLoopbackPort();
  EXPECT_EQ(RunBinary({"load", "--port", std::to_string(closed), "-d", "1s"}, &output), 1);
  EXPECT_NE(output.find("cannot connect to 127.0.0.1:" + std::to_string(closed)), std::string::npos)
      << output;
  EXPECT_EQ(RunBinary({"load", "--mix", "get:90,frobnicate:10"}, &output), 2);
  EXPECT_NE(output.find("--mix: 'frobnicate:10': unknown command"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--mix", "mget:1001"}, &output), 2);
  EXPECT_NE(
      output.find("--mix: 'mget:1001': mget needs its number of keys a request, from 1 to 1000"),
      std::string::npos)
      << output;
  EXPECT_EQ(RunBinary({"load", "--rate", "fast"}, &output), 2);
  EXPECT_EQ(RunBinary({"load", "-d", "10 parsecs"}, &output), 2);
  EXPECT_EQ(RunBinary({"load", "--spin", "1s"}, &output), 2);
  EXPECT_NE(output.find("--spin: at most 100ms"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--workers", "3", "--worker-index", "1"}, &output), 2);
  EXPECT_NE(output.find("--workers needs --start-at"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--workers", "3", "--worker-index", "3"}, &output), 2);
  EXPECT_NE(output.find("--worker-index 3 is not below --workers 3"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--start-at", "12:00"}, &output), 2);
  EXPECT_NE(output.find("--start-at: '12:00' is not a time"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--start-at", "2026-12-07T12:00:00"}, &output), 2);  // no zone
  EXPECT_EQ(RunBinary({"load", "--seed", "12x"}, &output), 2);
  EXPECT_NE(output.find("--seed: '12x' is not a 64-bit number"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--workers", "4", "--worker-index", "0", "-c", "3", "--start-at",
                       "@" + std::to_string(time(nullptr) + 60)},
                      &output),
            2);
  EXPECT_NE(output.find("must be at least --workers (4)"), std::string::npos) << output;
  // A metrics port in use; an IPv6 address, which Debian 12's civetweb cannot listen on.
  RedisServer redis;
  const std::string busy = std::to_string(redis.port());
  EXPECT_EQ(RunBinary({"load", "--port", busy, "-d", "100ms", "--metrics-port", busy}, &output), 1);
  EXPECT_EQ(output.find("switchyard load: cannot serve metrics on 127.0.0.1:" + busy + ": "), 0u)
      << output;
  const int ipv6 = RunBinary({"load", "--port", busy, "-d", "100ms", "--warmup", "0", "-q",
                              "--metrics-bind", "::1", "--metrics-port", "0"},
                             &output);
  if (ipv6 != 0) {  // a civetweb built with IPv6 serves it instead
    EXPECT_EQ(ipv6, 1);
    EXPECT_NE(output.find("cannot serve metrics on [::1]:0: "), std::string::npos) << output;
    EXPECT_NE(output.find("needs a civetweb built with IPv6"), std::string::npos) << output;
  }
  const std::string junk = TempFile("junk.json");
  {
    std::FILE* file = std::fopen(junk.c_str(), "w");
    std::fputs("{\"nope\": 1}", file);
    std::fclose(file);
  }
  EXPECT_EQ(RunBinary({"load", "merge", junk}, &output), 1);
  EXPECT_NE(output.find("is not a load result"), std::string::npos) << output;
}

}  // namespace
}  // namespace switchyard::loadgen
