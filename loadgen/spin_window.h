// How long before an open-loop send is due its thread should wake, so that it is up and spinning
// when the request is due. A sleeping thread wakes late: a few microseconds on bare metal, often
// 50-100 us on a virtual machine, whose idle CPU has to be woken by the host. Waking that much
// early and spinning the rest keeps that lateness out of the latencies charged to the server.
//
// Fixed (--spin DURATION), or learned (--spin auto): a running estimate of the 95th percentile of
// how late this thread's timed sleeps actually ended, plus a margin, so the window fits the
// machine rather than a guess (spinning costs CPU at a rate of requests/s x window).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace switchyard::loadgen {

class SpinWindow {
 public:
  static constexpr std::int64_t kLearn = -1;

  // `fixed_ns` >= 0: always that window (0: no spinning). kLearn: learned as the thread sleeps.
  explicit SpinWindow(std::int64_t fixed_ns)
      : learn_(fixed_ns < 0), estimate_ns_(fixed_ns < 0 ? kInitialNs : fixed_ns) {}

  bool enabled() const { return learn_ || estimate_ns_ > 0; }
  bool learning() const { return learn_; }
  std::int64_t ns() const { return learn_ ? estimate_ns_ + kMarginNs : estimate_ns_; }

  // A sleep asked to end at `asked_ns` ended at `woke_ns`.
  void Woke(std::int64_t asked_ns, std::int64_t woke_ns) {
    if (!learn_) return;
    // A stochastic quantile estimate: up by 95 steps when a wake-up was later than the estimate,
    // down by 5 when not; it settles where 5% of wake-ups are later, whatever their spread.
    constexpr std::int64_t kStepNs = 40;
    estimate_ns_ += woke_ns - asked_ns > estimate_ns_ ? 95 * kStepNs : -5 * kStepNs;
    estimate_ns_ = std::clamp<std::int64_t>(estimate_ns_, 0, kMaxNs);
  }

 private:
  static constexpr std::int64_t kInitialNs = 50'000;
  static constexpr std::int64_t kMarginNs = 10'000;
  static constexpr std::int64_t kMaxNs = 2'000'000;  // beyond, it is not a wake-up delay

  bool learn_;
  std::int64_t estimate_ns_;
};

// The SpinWindow argument for a --spin value in seconds (negative: learn it).
inline std::int64_t SpinWindowNs(double spin_seconds) {
  return spin_seconds < 0 ? SpinWindow::kLearn : std::llround(spin_seconds * 1e9);
}

}  // namespace switchyard::loadgen
