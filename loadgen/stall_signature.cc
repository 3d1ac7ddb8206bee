#include "loadgen/stall_signature.h"

#include <cstdio>

namespace switchyard::loadgen {

StallSignature DelayedAckStall(const Histogram& latency) {
  using Rule = DelayedAckRule;
  StallSignature result;
  if (latency.total() == 0) return result;
  // Each bucket counts by its lowest value: buckets near 40 ms are 32 us wide, far finer than the
  // bands.
  std::uint64_t below = 0, window = 0, above = 0;
  for (const auto& [value, count] : latency.Buckets()) {
    if (value >= Rule::kBelowLowNs && value < Rule::kWindowLowNs) below += count;
    if (value >= Rule::kWindowLowNs && value < Rule::kWindowHighNs) window += count;
    if (value >= Rule::kWindowHighNs && value < Rule::kAboveHighNs) above += count;
  }
  result.fraction = static_cast<double>(window) / static_cast<double>(latency.total());
  const auto per_ms = [](std::uint64_t count, std::uint64_t low_ns, std::uint64_t high_ns) {
    return static_cast<double>(count) / (static_cast<double>(high_ns - low_ns) / 1e6);
  };
  const double peak = per_ms(window, Rule::kWindowLowNs, Rule::kWindowHighNs);
  const std::uint64_t median = latency.ValueAtPercentile(50);
  result.fired = median <= Rule::kMaxMedianNs && window >= Rule::kMinStalled &&
                 result.fraction >= Rule::kMinFraction &&
                 peak >= Rule::kPeakRatio * per_ms(below, Rule::kBelowLowNs, Rule::kWindowLowNs) &&
                 peak >= Rule::kPeakRatio * per_ms(above, Rule::kWindowHighNs, Rule::kAboveHighNs);
  if (result.fired) {
    char text[400];
    std::snprintf(text, sizeof text,
                  "%.2f%% of requests (%llu) took 38-56 ms while the median is %.3g ms: the "
                  "signature of Nagle's algorithm on the server holding a small reply until this "
                  "client's delayed ACK (40 ms); those latencies measure that timer (set "
                  "TCP_NODELAY on the server's sockets)",
                  result.fraction * 100, static_cast<unsigned long long>(window),
                  static_cast<double>(median) / 1e6);
    result.message = text;
  }
  return result;
}

}  // namespace switchyard::loadgen
