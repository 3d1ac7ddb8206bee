// A latency histogram of HdrHistogram's class: 3 significant digits over the whole range of
// uint64 nanoseconds (1 ns up to centuries), fixed memory, O(1) recording, exact merge.
//
// Layout (HdrHistogram's, with 2048 sub-buckets): values below 2048 ns get a bucket each; above,
// each power-of-two range [2^k, 2^(k+1)) is split into 1024 equal buckets, so a bucket is never
// wider than 1/1024 of the values in it (relative error < 0.1%, i.e. 3 significant digits).
// Two histograms merge exactly (counts add bucket by bucket), so results from threads, processes
// and machines combine into precisely the histogram of all their samples.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace switchyard::loadgen {

class Histogram {
 public:
  // The geometry in words, carried by every result file: histograms of another geometry would not
  // add bucket for bucket, so `load merge` refuses to mix them.
  static constexpr const char* kLayout = "hdr: 2048 sub-buckets, 3 significant digits, ns";

  Histogram();

  void Record(std::uint64_t value_ns) { RecordCount(value_ns, 1); }
  void RecordCount(std::uint64_t value_ns, std::uint64_t count);
  void Merge(const Histogram& other);
  void Reset();

  std::uint64_t total() const { return total_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0.0 : static_cast<double>(sum_) / total_; }
  std::uint64_t sum() const { return sum_; }

  // The smallest value V such that at least `percentile`% of the samples are <= V, up to the
  // histogram's precision: the highest value equivalent to the sample found (as HdrHistogram
  // reports), capped at the exact max. 0 when empty.
  std::uint64_t ValueAtPercentile(double percentile) const;

  // Non-empty buckets as (lowest value in the bucket, count), ascending: what a result file
  // carries so that another process can merge it exactly (RecordCount of each pair).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> Buckets() const;
  // Restores exact min/max/sum after rebuilding from Buckets().
  void SetExtremes(std::uint64_t min_ns, std::uint64_t max_ns, std::uint64_t sum_ns);

  // Bucket geometry, public for tests.
  static std::size_t IndexOf(std::uint64_t value);
  static std::uint64_t LowestEquivalent(std::size_t index);
  static std::uint64_t HighestEquivalent(std::size_t index);

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

}  // namespace switchyard::loadgen
