// The delayed-ACK stall signature: a cluster of latencies at Linux's delayed-ACK timeout (40 ms,
// TCP_DELACK_MIN, which loopback and LAN connections get since their RTT is below it) in a run
// whose median is far below it. That is what Nagle's algorithm on the server leaves behind: a
// small reply, or the second part of one, is held while earlier data is unacknowledged, and the
// client, with nothing to send, acknowledges only when its delayed-ACK timer fires. The cure is
// TCP_NODELAY on the server's sockets; the tails measure that timer, not the server.
//
// The rule reads only the latency histogram, so a merge of several results gives the same answer
// as one run of all their samples. It fires when:
//   - the median is at most a tenth of the timeout (a server uniformly slow at 40 ms is slow, not
//     stalled);
//   - at least 0.1% of the requests, and at least kMinStalled of them, fall in the cluster's
//     window, [38 ms, 56 ms): the timer's 40 ms, less a little for clock edges, plus up to four
//     4 ms jiffies of timer granularity and the server's own time;
//   - the window is a peak, not part of a slope: its requests per millisecond are at least
//     kPeakRatio times those of the band just below, [19 ms, 38 ms), and of the band just above,
//     [56 ms, 112 ms). A tail that spreads smoothly (a server stall, a busy machine) puts as many
//     requests per millisecond beside the window as in it.
// A server that really takes 40 ms on a few requests of a fast mix (a 40 ms SY.WAIT) would fire it
// too: the message says what the cluster is consistent with, not what it proves.
#pragma once

#include <cstdint>
#include <string>

#include "loadgen/histogram.h"

namespace switchyard::loadgen {

struct StallSignature {
  bool fired = false;
  double fraction = 0;  // of all requests, those in the window, whether or not the rule fired
  std::string message;  // empty unless fired
};

struct DelayedAckRule {
  static constexpr std::uint64_t kTimeoutNs = 40'000'000;
  static constexpr std::uint64_t kWindowLowNs = 38'000'000;
  static constexpr std::uint64_t kWindowHighNs = 56'000'000;  // exclusive
  static constexpr std::uint64_t kBelowLowNs = 19'000'000;
  static constexpr std::uint64_t kAboveHighNs = 112'000'000;
  static constexpr std::uint64_t kMaxMedianNs = kTimeoutNs / 10;
  static constexpr double kMinFraction = 0.001;
  static constexpr std::uint64_t kMinStalled = 3;
  static constexpr double kPeakRatio = 4;
};

// Applies the rule above to a run's latency histogram (corrected, in open loop).
StallSignature DelayedAckStall(const Histogram& latency);

}  // namespace switchyard::loadgen
