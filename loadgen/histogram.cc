#include "loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace switchyard::loadgen {
namespace {

constexpr int kSubBucketBits = 11;                           // 2048 sub-buckets: 3 digits
constexpr std::uint64_t kSubBuckets = 1u << kSubBucketBits;  // values below get a bucket each
constexpr std::uint64_t kHalf = kSubBuckets / 2;
// Shifts 0..53 cover every uint64 (a value's top 11 bits index within its power of two).
constexpr std::size_t kBucketCount = kSubBuckets + (64 - kSubBucketBits) * kHalf;

}  // namespace

Histogram::Histogram() : counts_(kBucketCount, 0) {}

std::size_t Histogram::IndexOf(std::uint64_t value) {
  if (value < kSubBuckets) return static_cast<std::size_t>(value);
  // shift >= 1 makes (value >> shift) land in [1024, 2048).
  const int shift = std::bit_width(value) - kSubBucketBits;
  return static_cast<std::size_t>(shift * kHalf + (value >> shift));
}

std::uint64_t Histogram::LowestEquivalent(std::size_t index) {
  if (index < kSubBuckets) return index;
  const std::size_t shift = index / kHalf - 1;
  return static_cast<std::uint64_t>(index - shift * kHalf) << shift;
}

std::uint64_t Histogram::HighestEquivalent(std::size_t index) {
  if (index < kSubBuckets) return index;
  const std::size_t shift = index / kHalf - 1;
  return LowestEquivalent(index) + ((std::uint64_t{1} << shift) - 1);
}

void Histogram::RecordCount(std::uint64_t value_ns, std::uint64_t count) {
  if (count == 0) return;
  counts_[IndexOf(value_ns)] += count;
  total_ += count;
  sum_ += value_ns * count;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void Histogram::Merge(const Histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

std::uint64_t Histogram::ValueAtPercentile(double percentile) const {
  if (total_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  // The rank of the sample wanted, 1-based, at least 1: the same rule as a sorted list's
  // element ceil(p/100 * n).
  auto rank =
      static_cast<std::uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(HighestEquivalent(i), max_);
  }
  return max_;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Histogram::Buckets() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) buckets.emplace_back(LowestEquivalent(i), counts_[i]);
  }
  return buckets;
}

void Histogram::SetExtremes(std::uint64_t min_ns, std::uint64_t max_ns, std::uint64_t sum_ns) {
  if (total_ == 0) return;
  min_ = min_ns;
  max_ = max_ns;
  sum_ = sum_ns;
}

}  // namespace switchyard::loadgen
