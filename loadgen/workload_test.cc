#include "loadgen/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "loadgen/load_command.h"
#include "loadgen/resp_reply.h"
#include "loadgen/spin_window.h"

namespace switchyard::loadgen {
namespace {

TEST(ScheduleTest, UniformIntendedTimesAreExactlySpaced) {
  // 4 connections at 1000/s in total: 250/s each, 4 ms apart, phases interleaving them 1 ms apart.
  std::vector<std::int64_t> all;
  for (int c = 0; c < 4; ++c) {
    Schedule schedule(1'000'000'000, 250, c / 4.0, Schedule::Arrival::kUniform, c);
    for (int i = 0; i < 1000; ++i) {
      const std::int64_t due = schedule.Next();
      EXPECT_EQ(due, 1'000'000'000 + (4LL * i + c) * 1'000'000) << c << " " << i;
      all.push_back(due);
    }
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i] - all[i - 1], 1'000'000);
}

TEST(ScheduleTest, UniformSpacingDoesNotDriftOverLongRuns) {
  // 3 per second does not divide a second in whole nanoseconds; a million requests later the
  // schedule must still be where arithmetic says, to the nanosecond.
  Schedule schedule(0, 3, 0, Schedule::Arrival::kUniform, 1);
  std::int64_t due = 0;
  for (int i = 0; i <= 1'000'000; ++i) due = schedule.Next();
  EXPECT_NEAR(static_cast<double>(due), 1e6 * 1e9 / 3, 1);
}

TEST(ScheduleTest, PoissonArrivalsHaveTheRequestedRateAndExponentialGaps) {
  Schedule schedule(0, 10000, 0, Schedule::Arrival::kPoisson, 99);
  const int n = 200000;
  std::int64_t previous = 0, first = schedule.Peek();
  double sum = 0, sum_squares = 0;
  for (int i = 0; i < n; ++i) {
    const std::int64_t due = schedule.Next();
    ASSERT_GE(due, previous);
    const double gap = static_cast<double>(due - previous);
    sum += gap;
    sum_squares += gap * gap;
    previous = due;
  }
  EXPECT_GE(first, 0);
  const double mean = sum / n;
  const double deviation = std::sqrt(sum_squares / n - mean * mean);
  EXPECT_NEAR(mean, 100'000, 1000);       // 1/rate = 100 µs, within 1%
  EXPECT_NEAR(deviation, 100'000, 2000);  // an exponential's deviation equals its mean
}

TEST(MixTest, ParsesWeightsAndSimulatedWork) {
  const auto mix = ParseMix("get:90,set:10,sy.cpu:100:5,sy.wait:250,echo,incr:3");
  ASSERT_EQ(mix.size(), 6u);
  EXPECT_EQ(mix[0].kind, CommandKind::kGet);
  EXPECT_EQ(mix[0].weight, 90u);
  EXPECT_EQ(mix[2].kind, CommandKind::kSyCpu);
  EXPECT_EQ(mix[2].micros, 100u);
  EXPECT_EQ(mix[2].weight, 5u);
  EXPECT_EQ(mix[3].micros, 250u);
  EXPECT_EQ(mix[3].weight, 1u);
  EXPECT_EQ(mix[4].weight, 1u);
  for (const char* bad : {"foo:1", "get:0", "get:x", "sy.cpu", "get:1:2", "", "get:1,"}) {
    EXPECT_THROW(ParseMix(bad), std::invalid_argument) << bad;
  }
}

TEST(MixTest, RequestsFollowTheWeights) {
  const Workload workload(ParseMix("get:90,set:10"), 1000, "uniform", ParseSizeRange("16-1k"));
  Random random(5);
  std::map<std::string, int> counts;
  std::string out;
  for (int i = 0; i < 100000; ++i) {
    out.clear();
    workload.AppendRequest(out, random);
    counts[out.substr(0, 13)]++;
  }
  EXPECT_NEAR(counts["*2\r\n$3\r\nGET\r\n"], 90000, 1000);
  EXPECT_NEAR(counts["*3\r\n$3\r\nSET\r\n"], 10000, 1000);
}

TEST(MixTest, RequestsAreExactRespWithFixedWidthKeys) {
  const Workload workload(ParseMix("get"), 1, "uniform", ParseSizeRange("64"));
  Random random(1);
  std::string out;
  workload.AppendRequest(out, random);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000000\r\n");
  // Over a million keys, so that both 6-digit halves of the number are written.
  const Workload incr(ParseMix("incr"), 3000000, "uniform", ParseSizeRange("64"));
  int above_a_million = 0;
  for (int i = 0; i < 1000; ++i) {
    out.clear();
    incr.AppendRequest(out, random);
    ASSERT_EQ(out.size(),
              std::string("*2\r\n$4\r\nINCR\r\n$20\r\ncounter:000000123456\r\n").size());
    const std::string digits = out.substr(out.size() - 14, 12);
    ASSERT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << out;
    ASSERT_LT(std::stoull(digits), 3000000u) << out;  // halves in their places
    above_a_million += std::stoull(digits) >= 1000000u ? 1 : 0;
  }
  EXPECT_NEAR(above_a_million, 667, 100);
  const Workload set(ParseMix("set"), 1, "uniform", ParseSizeRange("5"));
  out.clear();
  set.AppendRequest(out, random);
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$5\r\nabcde\r\n");
}

// The precomputed requests are byte for byte what the general encoder writes, for every command.
TEST(MixTest, EveryCommandMatchesTheGeneralEncoder) {
  const std::string key = "key:000000000000", counter = "counter:000000000000";
  const std::pair<const char*, std::string> cases[] = {
      {"get",
       [&] {
         std::string s;
         AppendCommand(s, {"GET", key});
         return s;
       }()},
      {"set",
       [&] {
         std::string s;
         AppendCommand(s, {"SET", key, "abcdefg"});
         return s;
       }()},
      {"incr",
       [&] {
         std::string s;
         AppendCommand(s, {"INCR", counter});
         return s;
       }()},
      {"echo",
       [&] {
         std::string s;
         AppendCommand(s, {"ECHO", "abcdefg"});
         return s;
       }()},
      {"ping",
       [&] {
         std::string s;
         AppendCommand(s, {"PING"});
         return s;
       }()},
      {"sy.cpu:100",
       [&] {
         std::string s;
         AppendCommand(s, {"SY.CPU", "100"});
         return s;
       }()},
      {"sy.wait:5",
       [&] {
         std::string s;
         AppendCommand(s, {"SY.WAIT", "5"});
         return s;
       }()},
      {"sy.block:70",
       [&] {
         std::string s;
         AppendCommand(s, {"SY.BLOCK", "70"});
         return s;
       }()},
  };
  for (const auto& [mix, expected] : cases) {
    const Workload workload(ParseMix(mix), 1, "uniform", ParseSizeRange("7"));
    Random random(9);
    std::string out = "previous|";
    workload.AppendRequest(out, random);
    EXPECT_EQ(out, "previous|" + expected) << mix;
  }
  // Sizes drawn from a range: every length line matches its value.
  const Workload echo(ParseMix("echo"), 1, "uniform", ParseSizeRange("0-300"));
  Random random(4);
  for (int i = 0; i < 1000; ++i) {
    std::string out;
    echo.AppendRequest(out, random);
    const std::size_t length_at = out.find('$', 12);
    const std::size_t size = std::stoul(out.substr(length_at + 1));
    ASSERT_LE(size, 300u);
    ASSERT_EQ(out.size(), out.find("\r\n", length_at) + 2 + size + 2) << out;
    ASSERT_EQ(out.substr(out.size() - 2), "\r\n");
  }
}

// The learned window settles near the 95th percentile of how late sleeps ended, plus its margin.
TEST(SpinWindowTest, LearnsTheLatenessOfWakeUps) {
  SpinWindow learned(SpinWindow::kLearn);
  Random random(11);
  // Wake-ups 20-120 us late, uniformly: the 95th percentile is 115 us.
  for (int i = 0; i < 20000; ++i) {
    learned.Woke(0, 20'000 + static_cast<std::int64_t>(random.Below(100'001)));
  }
  EXPECT_NEAR(static_cast<double>(learned.ns()), 115'000 + 10'000, 8'000);
  // A machine that wakes on time shrinks it to little more than the margin.
  for (int i = 0; i < 20000; ++i) learned.Woke(1000, 1000 + 2'000);
  EXPECT_LE(learned.ns(), 15'000);
  EXPECT_TRUE(learned.enabled());
  // Fixed windows never move; 0 means no spinning at all.
  SpinWindow fixed(70'000), off(0);
  fixed.Woke(0, 1'000'000);
  EXPECT_EQ(fixed.ns(), 70'000);
  EXPECT_FALSE(off.enabled());
}

TEST(KeyChooserTest, ZipfianFavoursTheFirstKeys) {
  const KeyChooser zipf(10000, "zipfian:0.99");
  const KeyChooser uniform(10000, "uniform");
  Random random(3);
  int zipf_hot = 0, uniform_hot = 0;
  for (int i = 0; i < 100000; ++i) {
    const auto key = zipf.Next(random);
    ASSERT_LT(key, 10000u);
    zipf_hot += key < 100 ? 1 : 0;
    uniform_hot += uniform.Next(random) < 100 ? 1 : 0;
  }
  // The hottest 1% of keys: about 1% of uniform draws, over half of zipfian(0.99) ones.
  EXPECT_NEAR(uniform_hot, 1000, 300);
  EXPECT_GT(zipf_hot, 50000);
  EXPECT_THROW(KeyChooser(10, "zipfian:1.5"), std::invalid_argument);
  EXPECT_THROW(KeyChooser(10, "pareto"), std::invalid_argument);
}

TEST(FlagValuesTest, UnitsParseAndNonsenseIsRefused) {
  EXPECT_DOUBLE_EQ(ParseDurationSeconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(ParseDurationSeconds("2m"), 120);
  EXPECT_DOUBLE_EQ(ParseDurationSeconds("10"), 10);
  EXPECT_DOUBLE_EQ(ParseRate("50k"), 50000);
  double percentile = 0, seconds = 0;
  ParseSlo("99.9:1ms", &percentile, &seconds);
  EXPECT_DOUBLE_EQ(percentile, 99.9);
  EXPECT_DOUBLE_EQ(seconds, 0.001);
  EXPECT_THROW(ParseDurationSeconds("10 parsecs"), std::invalid_argument);
  EXPECT_THROW(ParseDurationSeconds("-1s"), std::invalid_argument);
  EXPECT_THROW(ParseSlo("1ms", &percentile, &seconds), std::invalid_argument);
  const SizeRange range = ParseSizeRange("16-1k");
  EXPECT_EQ(range.min, 16u);
  EXPECT_EQ(range.max, 1024u);
  EXPECT_THROW(ParseSizeRange("1k-16"), std::invalid_argument);
}

// The gRPC mode's view of the same choice: the weights, RESP's key formats and the value sizes.
TEST(MixTest, ChooseRequestGivesTheSameChoiceAsParts) {
  const Workload workload(ParseMix("get:50,set:30,incr:10,sy.wait:500:10"), 1000, "uniform",
                          ParseSizeRange("16-1k"));
  Random random(5);
  std::map<CommandKind, int> counts;
  std::string key;
  for (int i = 0; i < 100000; ++i) {
    const Workload::Request request = workload.ChooseRequest(random, &key);
    ++counts[request.kind];
    ASSERT_GE(request.value.size(), 16u);
    ASSERT_LE(request.value.size(), 1024u);
    if (request.kind == CommandKind::kGet || request.kind == CommandKind::kSet) {
      ASSERT_EQ(key.size(), 16u);
      ASSERT_EQ(key.substr(0, 4), "key:");
      ASSERT_LT(std::stoull(key.substr(4)), 1000u);
    } else if (request.kind == CommandKind::kIncr) {
      ASSERT_EQ(key.substr(0, 8), "counter:") << key;
    } else {
      ASSERT_EQ(request.micros, 500u);
    }
  }
  EXPECT_NEAR(counts[CommandKind::kGet], 50000, 1000);
  EXPECT_NEAR(counts[CommandKind::kSet], 30000, 1000);
  EXPECT_NEAR(counts[CommandKind::kIncr], 10000, 1000);
  EXPECT_NEAR(counts[CommandKind::kSyWait], 10000, 1000);
  const Workload set(ParseMix("set"), 1, "uniform", ParseSizeRange("5"));
  const Workload::Request request = set.ChooseRequest(random, &key);
  EXPECT_EQ(key, "key:000000000000");
  EXPECT_EQ(request.value, "abcde");
}

}  // namespace
}  // namespace switchyard::loadgen
