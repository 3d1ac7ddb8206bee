// The sweep's decisions on constructed runs: where the knee lands, what a run limited by the load
// generator and a noisy run do to it. (load_command_test.cc sweeps a real redis-server.)
#include "loadgen/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "loadgen/histogram.h"
#include "loadgen/result.h"

namespace switchyard::loadgen {
namespace {

// A run at `rate` whose every request took `seconds`.
pb::LoadResult RunResult(double rate, double seconds, bool client_limited = false,
                         std::uint64_t failed = 0) {
  pb::LoadResult run;
  run.set_target_rate(rate);
  run.set_client_limited(client_limited);
  run.set_failed(failed);
  Histogram histogram;
  histogram.RecordCount(static_cast<std::uint64_t>(seconds * 1e9), 1000);
  ToProto(histogram, run.mutable_histogram());
  return run;
}

constexpr double kFast = 100e-6, kSlow = 5e-3;  // either side of a 1 ms objective
constexpr double kPeak = 100'000;

// A server that meets p99 <= 1 ms up to `knee` requests a second and misses it above.
RunAtRate ServerWithKnee(double knee, std::map<double, int>* runs_at = nullptr) {
  return [=](double rate) {
    if (runs_at != nullptr) ++(*runs_at)[rate];
    return RunResult(rate, rate <= knee ? kFast : kSlow);
  };
}

SweepPlan Plan(unsigned runs = 1) {
  SweepPlan plan;
  plan.steps = 8;
  plan.runs_per_step = runs;
  plan.precision = 0.05;
  return plan;
}

TEST(Sweep, BisectsTheKneeToWithinThePrecision) {
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, ServerWithKnee(37'000));
  EXPECT_LE(sweep.highest_rate_meeting_slo(), 37'000);
  EXPECT_GT(sweep.lowest_rate_missing_slo(), 37'000);
  EXPECT_LE(sweep.lowest_rate_missing_slo() - sweep.highest_rate_meeting_slo(), 0.05 * kPeak);
  EXPECT_FALSE(sweep.knee_is_lower_bound());
  // Climbs 12.5k, 25k, 37.5k (missed), then bisects: 31.25k, 34.375k.
  ASSERT_EQ(sweep.decisions_size(), 5);
  EXPECT_EQ(sweep.decisions(3).phase(), "bisection");
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 34'375);
  EXPECT_EQ(sweep.lowest_rate_missing_slo(), 37'500);
  for (int i = 1; i < sweep.steps_size(); ++i) {
    EXPECT_LE(sweep.steps(i - 1).target_rate(), sweep.steps(i).target_rate()) << "rising order";
  }
}

TEST(Sweep, DecidingStepsRunSeveralTimesAndOneNoisyRunDoesNotMoveTheKnee) {
  std::map<double, int> runs_at;
  int noisy = 0;
  const auto server = [&](double rate) {
    ++runs_at[rate];
    // At 25k/s the first run is slow (a hiccup), the next two are fast.
    if (rate == 25'000 && noisy++ == 0) return RunResult(rate, kSlow);
    return RunResult(rate, rate <= 37'000 ? kFast : kSlow);
  };
  const pb::SweepResult sweep = Sweep(Plan(3), kPeak, server);
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 34'375);
  EXPECT_EQ(runs_at[12'500], 1) << "a rate met while climbing runs once";
  EXPECT_EQ(runs_at[25'000], 3) << "a miss is confirmed: one each way, the third decides";
  EXPECT_EQ(runs_at[37'500], 2) << "two misses of three are a majority already";
  EXPECT_EQ(runs_at[31'250], 2) << "bisection steps decide";
  EXPECT_EQ(runs_at[34'375], 3) << "the knee's rate runs all three, for its spread";
  EXPECT_EQ(sweep.runs_per_step(), 3u);
  for (const auto& decision : sweep.decisions()) {
    if (decision.rate() == 25'000) {
      EXPECT_EQ(decision.verdict(), "met");
      EXPECT_EQ(decision.observed_seconds_size(), 3);
      EXPECT_NEAR(decision.median_seconds(), kFast, kFast * 0.01);
    }
  }
  EXPECT_EQ(sweep.steps_size(), 1 + 3 + 2 + 2 + 3) << "every run is kept";
}

TEST(Sweep, TheLastRateThatMetIsConfirmed) {
  // 37.5k meets once by luck in the climb, then misses twice: it is not the knee.
  int lucky = 0;
  const auto server = [&](double rate) {
    if (rate == 37'500 && lucky++ == 0) return RunResult(rate, kFast);
    return RunResult(rate, rate <= 30'000 ? kFast : kSlow);
  };
  const pb::SweepResult sweep = Sweep(Plan(3), kPeak, server);
  EXPECT_LE(sweep.highest_rate_meeting_slo(), 30'000);
  EXPECT_GT(sweep.lowest_rate_missing_slo(), 30'000);
  EXPECT_LE(sweep.lowest_rate_missing_slo() - sweep.highest_rate_meeting_slo(), 0.05 * kPeak);
}

TEST(Sweep, ARunTheLoadGeneratorLimitedIsRunAgainNotReadAsAMiss) {
  std::map<double, int> runs_at;
  const auto server = [&](double rate) {
    // The first run at 12.5k/s is limited by the client: it says nothing of the server.
    if (++runs_at[rate] == 1 && rate == 12'500)
      return RunResult(rate, kSlow, /*client_limited=*/true);
    return RunResult(rate, rate <= 37'000 ? kFast : kSlow);
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  EXPECT_EQ(runs_at[12'500], 2);
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 34'375);
  EXPECT_EQ(sweep.decisions(0).client_limited_runs(), 1u);
  EXPECT_EQ(sweep.decisions(0).verdict(), "met");
}

TEST(Sweep, AFlaggedRunThatSentTheWholeRateAndStillMetCountsAsMet) {
  std::map<double, int> runs_at;
  const auto server = [&](double rate) {
    ++runs_at[rate];
    // Every run lags its schedule (flagged), but sends the whole rate.
    pb::LoadResult run = RunResult(rate, rate <= 37'000 ? kFast : kSlow, /*client_limited=*/true);
    run.set_sent_rate(rate);
    run.set_client_busy_fraction(0.4);
    return run;
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  EXPECT_EQ(runs_at[12'500], 1) << "met despite the lag: counted";
  EXPECT_EQ(runs_at[37'500], 3) << "a miss with late sends is not read as the server's";
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 34'375);
  EXPECT_TRUE(sweep.knee_is_lower_bound()) << "no miss was the server's own";
}

TEST(Sweep, ARateThatStaysClientLimitedEndsTheSweepWithALowerBound) {
  std::map<double, int> runs_at;
  const auto server = [&](double rate) {
    ++runs_at[rate];
    return RunResult(rate, kFast, /*client_limited=*/rate >= 50'000);
  };
  SweepPlan plan = Plan();
  plan.retries = 2;
  const pb::SweepResult sweep = Sweep(plan, kPeak, server);
  EXPECT_EQ(runs_at[50'000], 3) << "one run and two retries";
  EXPECT_EQ(runs_at.count(62'500), 0u) << "nothing above a rate that stayed limited";
  // Bisected below it, as below a miss: 43.75k and 46.875k met, within 5% of the peak of 50k.
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 46'875);
  EXPECT_EQ(sweep.lowest_rate_missing_slo(), 0) << "no rate missed";
  EXPECT_TRUE(sweep.knee_is_lower_bound());
  EXPECT_NE(sweep.knee_note().find("limit at 50000/s"), std::string::npos) << sweep.knee_note();
  EXPECT_NE(sweep.knee_note().find("at least 46875/s"), std::string::npos) << sweep.knee_note();
}

TEST(Sweep, AMissBelowARateTheLoadGeneratorCouldNotDriveIsTheKnee) {
  // Limited from 50k/s, but the server misses from 45k/s: bisection finds the real knee.
  const auto server = [](double rate) {
    return RunResult(rate, rate <= 45'000 ? kFast : kSlow, /*client_limited=*/rate >= 50'000);
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 43'750);
  EXPECT_EQ(sweep.lowest_rate_missing_slo(), 46'875);
  EXPECT_FALSE(sweep.knee_is_lower_bound()) << sweep.knee_note();
}

TEST(Sweep, AFirstStepTheLoadGeneratorCouldNotDriveIsHalved) {
  const auto server = [](double rate) {
    return RunResult(rate, kFast, /*client_limited=*/rate > 10'000);
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  // 12.5k limited, 6.25k met, then bisected up toward 12.5k: 9.375k met, 10.9375k limited.
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 9'375);
  EXPECT_TRUE(sweep.knee_is_lower_bound());
}

TEST(Sweep, ARateTheLoadGeneratorHasNoCpuForIsNotRunAgain) {
  std::map<double, int> runs_at;
  const auto server = [&](double rate) {
    ++runs_at[rate];
    pb::LoadResult run = RunResult(rate, kFast, /*client_limited=*/rate >= 50'000);
    run.set_client_busy_fraction(rate >= 50'000 ? 0.97 : 0.5);
    return run;
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  EXPECT_EQ(runs_at[50'000], 1) << "out of CPU: a rerun would say the same";
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 46'875);
  EXPECT_TRUE(sweep.knee_is_lower_bound());
}

TEST(Sweep, MeetingTheObjectiveUpToThePeakIsALowerBound) {
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, ServerWithKnee(1e9));
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), kPeak);
  EXPECT_TRUE(sweep.knee_is_lower_bound());
  EXPECT_EQ(sweep.decisions_size(), 8);
}

TEST(Sweep, BelowAFirstStepThatMissesTheRateIsHalvedThenBisected) {
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, ServerWithKnee(4'000));
  // 12.5k missed, then 6.25k missed, 3.125k met; bisected within 5k: done at once.
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 3'125);
  EXPECT_EQ(sweep.lowest_rate_missing_slo(), 6'250);
  EXPECT_EQ(sweep.decisions(1).phase(), "halving");
  const pb::SweepResult never = Sweep(Plan(), kPeak, ServerWithKnee(0));
  EXPECT_EQ(never.highest_rate_meeting_slo(), 0);
  EXPECT_EQ(never.decisions_size(), 5) << "the first step and four halvings";
}

TEST(Sweep, ARunThatLostRequestsMisses) {
  const auto server = [](double rate) {
    return RunResult(rate, kFast, false, /*failed=*/rate > 20'000 ? 1 : 0);
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server);
  EXPECT_LE(sweep.highest_rate_meeting_slo(), 20'000);
  EXPECT_GT(sweep.lowest_rate_missing_slo(), 20'000);
}

TEST(Sweep, StopsWhenAsked) {
  int runs = 0;
  const auto server = [&](double rate) {
    ++runs;
    return RunResult(rate, kFast);
  };
  const pb::SweepResult sweep = Sweep(Plan(), kPeak, server, nullptr, [&] { return runs >= 2; });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(sweep.highest_rate_meeting_slo(), 25'000);
}

}  // namespace
}  // namespace switchyard::loadgen
