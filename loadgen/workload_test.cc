#include "loadgen/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "loadgen/load_command.h"
#include "loadgen/resp_reply.h"
#include "loadgen/result.h"
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

TEST(MixTest, ParsesKeysARequestAndIncrBy) {
  const auto mix = ParseMix("mget:10,mget:10:30,mset:4,mset:1000:2,incrby,incrby:5");
  ASSERT_EQ(mix.size(), 6u);
  EXPECT_EQ(mix[0].kind, CommandKind::kMGet);
  EXPECT_EQ(mix[0].keys, 10u);
  EXPECT_EQ(mix[0].weight, 1u);
  EXPECT_EQ(mix[1].keys, 10u);
  EXPECT_EQ(mix[1].weight, 30u);
  EXPECT_EQ(mix[2].kind, CommandKind::kMSet);
  EXPECT_EQ(mix[2].keys, 4u);
  EXPECT_EQ(mix[3].keys, kMaxKeysPerRequest);
  EXPECT_EQ(mix[3].weight, 2u);
  EXPECT_EQ(mix[4].kind, CommandKind::kIncrBy);
  EXPECT_EQ(mix[4].weight, 1u);
  EXPECT_EQ(mix[5].weight, 5u);
  for (const char* bad : {"mget", "mget:0", "mget:1001", "mget:x", "mget:-1", "mset:4:0",
                          "mset:4:1:1", "incrby:5:1", "incrby:0", "mget:"}) {
    EXPECT_THROW(ParseMix(bad), std::invalid_argument) << bad;
  }
  try {
    ParseMix("get,mset:0:3");
    ADD_FAILURE() << "mset:0 accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(
        error.what(),
        "--mix: 'mset:0:3': mset needs its number of keys a request, from 1 to 1000, like mset:10 "
        "or mset:10:30");
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
      {"incrby",
       [&] {
         std::string s;
         AppendCommand(s, {"INCRBY", counter, "1"});
         return s;
       }()},
      {"mget:3",
       [&] {
         std::string s;
         AppendCommand(s, {"MGET", key, key, key});
         return s;
       }()},
      {"mset:5",  // eleven arguments: a header of two digits
       [&] {
         std::string s;
         AppendCommand(s, {"MSET", key, "abcdefg", key, "abcdefg", key, "abcdefg", key, "abcdefg",
                           key, "abcdefg"});
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

// Many keys a request: each is drawn on its own, an MSET's values each have their own size, and
// INCRBY's increment is its counter's number mod 10, plus 1.
TEST(MixTest, MultiKeyRequestsDrawEveryKeyAndIncrByItsDelta) {
  Random random(21);
  const Workload mget(ParseMix("mget:1000"), 3000000, "uniform", ParseSizeRange("8"));
  std::string out;
  EXPECT_EQ(mget.AppendRequest(out, random), 1000u);
  ASSERT_EQ(out.substr(0, 17), "*1001\r\n$4\r\nMGET\r\n");
  const std::string one_key = "$16\r\nkey:000000000000\r\n";
  ASSERT_EQ(out.size(), 17 + 1000 * one_key.size());
  std::set<std::uint64_t> distinct;
  for (std::size_t at = 17; at < out.size(); at += one_key.size()) {
    ASSERT_EQ(out.substr(at, 9), "$16\r\nkey:") << at;
    const std::string digits = out.substr(at + 9, 12);
    ASSERT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << digits;
    ASSERT_LT(std::stoull(digits), 3000000u);
    distinct.insert(std::stoull(digits));
  }
  EXPECT_GT(distinct.size(), 990u) << "a thousand draws from three million keys";

  const Workload mset(ParseMix("mset:50"), 10, "uniform", ParseSizeRange("1-100"));
  out.clear();
  EXPECT_EQ(mset.AppendRequest(out, random), 0u) << "any answer to MSET but an error will do";
  std::set<std::size_t> sizes;
  std::size_t at = out.find("MSET\r\n") + 6;
  for (int pair = 0; pair < 50; ++pair) {
    ASSERT_EQ(out.substr(at, 9), "$16\r\nkey:") << pair;
    at += one_key.size();
    ASSERT_EQ(out[at], '$');
    const std::size_t size = std::stoul(out.substr(at + 1));
    at = out.find("\r\n", at) + 2;
    ASSERT_EQ(out.substr(at, size),
              std::string("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                          "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz")
                  .substr(0, size));
    at += size + 2;
    sizes.insert(size);
  }
  EXPECT_EQ(at, out.size());
  EXPECT_GT(sizes.size(), 20u) << "each value's size drawn on its own";

  const Workload incrby(ParseMix("incrby"), 1000, "uniform", ParseSizeRange("8"));
  std::set<std::string> deltas;
  for (int i = 0; i < 1000; ++i) {
    out.clear();
    incrby.AppendRequest(out, random);
    const std::string prefix = "*3\r\n$6\r\nINCRBY\r\n$20\r\ncounter:";
    ASSERT_EQ(out.substr(0, prefix.size()), prefix);
    const std::uint64_t counter = std::stoull(out.substr(prefix.size(), 12));
    const std::string delta = std::to_string(counter % 10 + 1);
    ASSERT_EQ(out.substr(prefix.size() + 14),
              "$" + std::to_string(delta.size()) + "\r\n" + delta + "\r\n");
    deltas.insert(delta);
  }
  EXPECT_EQ(deltas.size(), 10u) << "every increment from 1 to 10";
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

TEST(FlagValuesTest, StartAtIsAnInstantWithItsZone) {
  constexpr std::int64_t kNoon = 1'796'644'800LL * 1'000'000'000;  // 2026-12-07T12:00:00Z
  EXPECT_EQ(ParseStartAt("2026-12-07T12:00:00Z"), kNoon);
  EXPECT_EQ(ParseStartAt("2026-12-07T12:00:00.25Z"), kNoon + 250'000'000);
  EXPECT_EQ(ParseStartAt("2026-12-07T13:30:00+01:30"), kNoon);
  EXPECT_EQ(ParseStartAt("2026-12-07T10:00:00-02:00"), kNoon);
  EXPECT_EQ(ParseStartAt("@1796644800.5"), kNoon + 500'000'000);
  EXPECT_EQ(FormatUtc(kNoon + 250'000'000), "2026-12-07T12:00:00.25Z");
  EXPECT_EQ(FormatUtc(kNoon), "2026-12-07T12:00:00Z");
  for (const char* bad : {"2026-12-07T12:00:00", "2026-12-07 12:00:00Z", "12:00", "tomorrow",
                          "2026-12-07T12:00:00Zulu", "2026-12-07T12:00:00.Z", "@-5", ""}) {
    EXPECT_THROW(ParseStartAt(bad), std::invalid_argument) << bad;
  }
}

// The gRPC mode's view of the same choice: the weights, RESP's key formats and the value sizes.
TEST(MixTest, ChooseRequestGivesTheSameChoiceAsParts) {
  const Workload workload(ParseMix("get:50,set:30,incr:10,sy.wait:500:10"), 1000, "uniform",
                          ParseSizeRange("16-1k"));
  Random random(5);
  std::map<CommandKind, int> counts;
  Workload::Request request;
  for (int i = 0; i < 100000; ++i) {
    workload.ChooseRequest(random, &request);
    ++counts[request.kind];
    if (request.kind == CommandKind::kGet || request.kind == CommandKind::kSet) {
      ASSERT_EQ(request.keys.size(), 1u);
      ASSERT_EQ(request.keys[0].size(), 16u);
      ASSERT_EQ(request.keys[0].substr(0, 4), "key:");
      ASSERT_LT(std::stoull(request.keys[0].substr(4)), 1000u);
      ASSERT_EQ(request.values.size(), request.kind == CommandKind::kSet ? 1u : 0u);
      if (request.kind == CommandKind::kSet) {
        ASSERT_GE(request.values[0].size(), 16u);
        ASSERT_LE(request.values[0].size(), 1024u);
      }
    } else if (request.kind == CommandKind::kIncr) {
      ASSERT_EQ(request.keys.size(), 1u);
      ASSERT_EQ(request.keys[0].substr(0, 8), "counter:") << request.keys[0];
    } else {
      ASSERT_TRUE(request.keys.empty());
      ASSERT_EQ(request.micros, 500u);
    }
  }
  EXPECT_NEAR(counts[CommandKind::kGet], 50000, 1000);
  EXPECT_NEAR(counts[CommandKind::kSet], 30000, 1000);
  EXPECT_NEAR(counts[CommandKind::kIncr], 10000, 1000);
  EXPECT_NEAR(counts[CommandKind::kSyWait], 10000, 1000);
  const Workload set(ParseMix("set"), 1, "uniform", ParseSizeRange("5"));
  set.ChooseRequest(random, &request);
  EXPECT_EQ(request.keys, std::vector<std::string>{"key:000000000000"});
  EXPECT_EQ(request.values, std::vector<std::string_view>{"abcde"});
}

// Encoded as RESP, the parts ChooseRequest gives are byte for byte what AppendRequest writes from
// the same seed: the two modes send the same commands, keys, values and increments.
TEST(MixTest, ChooseRequestAndAppendRequestMakeTheSameChoices) {
  const Workload workload(
      ParseMix("get,set,echo,incr,incrby,mget:3,mset:4,ping,sy.cpu:7,sy.wait:8,sy.block:9"), 100000,
      "zipfian:0.9", ParseSizeRange("0-300"));
  Random appending(17), choosing(17);
  Workload::Request request;
  std::map<CommandKind, int> seen;
  for (int i = 0; i < 5000; ++i) {
    std::string appended;
    const std::size_t array_length = workload.AppendRequest(appended, appending);
    workload.ChooseRequest(choosing, &request);
    ++seen[request.kind];
    std::vector<std::string> args;
    switch (request.kind) {
      case CommandKind::kGet:
        args = {"GET", request.keys[0]};
        break;
      case CommandKind::kSet:
        args = {"SET", request.keys[0], std::string(request.values[0])};
        break;
      case CommandKind::kEcho:
        args = {"ECHO", std::string(request.values[0])};
        break;
      case CommandKind::kIncr:
        args = {"INCR", request.keys[0]};
        break;
      case CommandKind::kIncrBy:
        args = {"INCRBY", request.keys[0], std::to_string(request.delta)};
        break;
      case CommandKind::kMGet:
        args = {"MGET"};
        args.insert(args.end(), request.keys.begin(), request.keys.end());
        break;
      case CommandKind::kMSet:
        args = {"MSET"};
        ASSERT_EQ(request.values.size(), request.keys.size());
        for (std::size_t k = 0; k < request.keys.size(); ++k) {
          args.push_back(request.keys[k]);
          args.emplace_back(request.values[k]);
        }
        break;
      case CommandKind::kPing:
        args = {"PING"};
        break;
      case CommandKind::kSyCpu:
      case CommandKind::kSyWait:
      case CommandKind::kSyBlock:
        args = {request.kind == CommandKind::kSyCpu    ? "SY.CPU"
                : request.kind == CommandKind::kSyWait ? "SY.WAIT"
                                                       : "SY.BLOCK",
                std::to_string(request.micros)};
        break;
    }
    std::string encoded = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) {
      encoded += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
    ASSERT_EQ(appended, encoded) << i;
    ASSERT_EQ(array_length, request.kind == CommandKind::kMGet ? 3u : 0u) << appended;
  }
  EXPECT_EQ(seen.size(), 11u) << "every command of the mix was drawn";
}

}  // namespace
}  // namespace switchyard::loadgen
