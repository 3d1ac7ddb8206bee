#include "loadgen/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace switchyard::loadgen {
namespace {

// The exact answer: the ceil(p/100 * n)-th smallest sample.
std::uint64_t SortedPercentile(const std::vector<std::uint64_t>& sorted, double percentile) {
  auto rank = static_cast<std::size_t>(std::ceil(percentile / 100.0 * sorted.size()));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

TEST(HistogramTest, BucketsAreContiguousAndNarrowEnoughForThreeDigits) {
  for (std::size_t index = 1; index < 60000 && Histogram::LowestEquivalent(index) != 0; ++index) {
    const std::uint64_t low = Histogram::LowestEquivalent(index);
    if (low == 0 && index > 0) break;
    ASSERT_EQ(Histogram::HighestEquivalent(index - 1) + 1, low) << index;
    ASSERT_EQ(Histogram::IndexOf(low), index);
    ASSERT_EQ(Histogram::IndexOf(Histogram::HighestEquivalent(index)), index);
    // From 1 µs (1000 ns) up, width over value is at most 1/1000: 3 significant digits.
    if (low < 1000) continue;
    const double width = static_cast<double>(Histogram::HighestEquivalent(index) - low + 1);
    ASSERT_LE(width / static_cast<double>(low), 1.0 / 1000) << low;
  }
  // 60 s and far beyond fit; the largest uint64 too.
  EXPECT_LT(Histogram::IndexOf(60'000'000'000ULL), Histogram::IndexOf(UINT64_MAX));
  Histogram histogram;
  histogram.Record(UINT64_MAX);
  EXPECT_EQ(histogram.max(), UINT64_MAX);
}

TEST(HistogramTest, PercentilesMatchASortedListToThreeDigits) {
  std::mt19937_64 random(42);
  // Log-uniform from 1 µs to 60 s: every decade the histogram claims to cover.
  std::uniform_real_distribution<double> exponent(3, std::log10(60e9));
  std::vector<std::uint64_t> samples;
  Histogram histogram;
  for (int i = 0; i < 200000; ++i) {
    const auto value = static_cast<std::uint64_t>(std::pow(10.0, exponent(random)));
    samples.push_back(value);
    histogram.Record(value);
  }
  std::sort(samples.begin(), samples.end());
  for (const double percentile : {0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0}) {
    const std::uint64_t exact = SortedPercentile(samples, percentile);
    const std::uint64_t reported = histogram.ValueAtPercentile(percentile);
    // Never below the true value, and above it by less than one bucket (0.1%).
    EXPECT_GE(reported, exact) << "p" << percentile;
    EXPECT_LE(static_cast<double>(reported - exact), static_cast<double>(exact) / 1000)
        << "p" << percentile;
  }
  EXPECT_EQ(histogram.max(), samples.back());
  EXPECT_EQ(histogram.min(), samples.front());
  EXPECT_EQ(histogram.total(), samples.size());
  double sum = 0;
  for (const auto value : samples) sum += static_cast<double>(value);
  EXPECT_NEAR(histogram.mean(), sum / samples.size(), 1e-6 * histogram.mean());
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram histogram;
  for (std::uint64_t value = 1; value <= 2000; ++value) histogram.Record(value);
  EXPECT_EQ(histogram.ValueAtPercentile(50), 1000u);
  EXPECT_EQ(histogram.ValueAtPercentile(99), 1980u);
  EXPECT_EQ(histogram.ValueAtPercentile(100), 2000u);
}

TEST(HistogramTest, MergeIsExactlyTheHistogramOfAllSamples) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(11, 2);  // around 60 µs, a long tail
  Histogram parts[3];
  Histogram all;
  for (int i = 0; i < 90000; ++i) {
    const auto value = static_cast<std::uint64_t>(latency(random));
    parts[i % 3].Record(value);
    all.Record(value);
  }
  Histogram merged;
  for (const Histogram& part : parts) merged.Merge(part);
  EXPECT_EQ(merged.Buckets(), all.Buckets());
  EXPECT_EQ(merged.total(), all.total());
  EXPECT_EQ(merged.sum(), all.sum());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  for (const double percentile : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    EXPECT_EQ(merged.ValueAtPercentile(percentile), all.ValueAtPercentile(percentile));
  }
}

TEST(HistogramTest, RebuildingFromBucketsIsExact) {
  Histogram original;
  for (std::uint64_t value = 1; value < 10'000'000'000ULL; value = value * 3 + 7) {
    original.RecordCount(value, value % 5 + 1);
  }
  Histogram copy;
  for (const auto& [value, count] : original.Buckets()) copy.RecordCount(value, count);
  copy.SetExtremes(original.min(), original.max(), original.sum());
  EXPECT_EQ(copy.Buckets(), original.Buckets());
  EXPECT_EQ(copy.ValueAtPercentile(99.9), original.ValueAtPercentile(99.9));
  EXPECT_EQ(copy.max(), original.max());
  EXPECT_EQ(copy.mean(), original.mean());
}

TEST(HistogramTest, EmptyHistogramReportsZero) {
  Histogram histogram;
  EXPECT_EQ(histogram.ValueAtPercentile(99), 0u);
  EXPECT_EQ(histogram.mean(), 0.0);
  EXPECT_EQ(histogram.min(), 0u);
}

}  // namespace
}  // namespace switchyard::loadgen
