// What the load generator sends and when: the command mix, the keys and values, and each
// connection's schedule of intended send times.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::loadgen {

// A small fast generator (SplitMix64): one per connection or thread, never shared.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  std::uint64_t Below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in (0, 1].
  double Unit() { return (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

enum class CommandKind {
  kGet,
  kSet,
  kEcho,
  kIncr,
  kIncrBy,
  kMGet,
  kMSet,
  kPing,
  kSyCpu,
  kSyWait,
  kSyBlock
};

// The most keys one MGET or MSET of the mix may carry.
inline constexpr std::uint64_t kMaxKeysPerRequest = 1000;

struct MixEntry {
  CommandKind kind;
  std::uint64_t weight = 1;
  std::uint64_t micros = 0;  // argument of the simulated-work commands
  std::uint64_t keys = 1;    // keys a request: the argument of mget and mset, unused by the others
};

// Parses "get:90,set:10" (command:weight), "sy.cpu:100:5" (simulated work: microseconds, then
// an optional weight) and "mget:10:30" (keys a request, 1 to kMaxKeysPerRequest, then an optional
// weight). Commands: get, set, echo, incr, incrby, mget, mset, ping, sy.cpu, sy.wait, sy.block.
// Throws std::invalid_argument with a one-line message naming the bad entry.
std::vector<MixEntry> ParseMix(std::string_view text);

// The increment INCRBY is sent with for counter number `key`: from 1 to 10, taken from the key
// rather than drawn, so that it costs no draw and a test can tell from a counter's value how many
// times it was incremented. Counters stay far from overflow: at 10 a request, 9 * 10^17 requests.
inline std::int64_t IncrByDelta(std::uint64_t key) {
  return static_cast<std::int64_t>(key % 10) + 1;
}

// "64" or "16-1k": a fixed value size or a uniform range, sizes with an optional k/m unit.
struct SizeRange {
  std::size_t min = 64;
  std::size_t max = 64;
};
SizeRange ParseSizeRange(std::string_view text);

// Keys 0..n-1, uniform or zipfian (theta in (0, 1), YCSB's generator: rank 0 is hottest).
class KeyChooser {
 public:
  // "uniform" or "zipfian:0.99" (plain "zipfian" is 0.99). Throws std::invalid_argument.
  KeyChooser(std::uint64_t keys, std::string_view distribution);
  std::uint64_t Next(Random& random) const;
  std::uint64_t keys() const { return keys_; }

 private:
  std::uint64_t keys_;
  bool zipfian_ = false;
  double theta_ = 0, alpha_ = 0, zetan_ = 0, eta_ = 0;
};

// Builds requests: picks a command from the mix, its keys and value sizes, and appends the RESP
// request to a buffer. Shared read-only by every thread; each caller brings its own Random.
class Workload {
 public:
  Workload(std::vector<MixEntry> mix, std::uint64_t keys, std::string_view key_distribution,
           SizeRange value_size);
  // Appends one request. Returns how many elements its reply must be an array of to be an answer
  // (an MGET's, one a key), or 0 when any reply but an error is.
  std::size_t AppendRequest(std::string& out, Random& random) const;

  // The same choice as AppendRequest, as parts instead of RESP bytes (for the gRPC mode).
  struct Request {
    CommandKind kind = CommandKind::kPing;
    std::vector<std::string> keys;         // "key:..." or "counter:...", as many as it takes
    std::vector<std::string_view> values;  // SET's and MSET's, one a key; ECHO's one
    std::uint64_t micros = 0;              // the simulated work's
    std::int64_t delta = 0;                // INCRBY's
  };
  // Fills `*request`, reusing its vectors' memory.
  void ChooseRequest(Random& random, Request* request) const;

 private:
  // Each mix entry's request, laid out once: what comes before the first key's digits (or the
  // whole request when nothing varies), what comes before each further key's, and what follows
  // each key. Building a request is then copies and twelve digits a key, as redis-benchmark fills
  // in its __rand_int__ placeholders; formatting every request from scratch showed in profiles
  // at pipeline depth.
  struct Template {
    std::string head;
    std::string next_key;    // a further key's length line and prefix (MGET, MSET)
    std::uint64_t keys = 0;  // how many: twelve digits and CRLF each
    bool has_value = false;  // a bulk value after each key (SET, MSET), or after the head (ECHO)
    bool has_delta = false;  // INCRBY's increment after the key
  };
  const MixEntry& Pick(Random& random) const;
  std::size_t ValueSize(Random& random) const;  // of SET's, MSET's and ECHO's values

  std::vector<MixEntry> mix_;
  std::vector<Template> templates_;  // one per mix entry
  std::uint64_t total_weight_ = 0;
  KeyChooser keys_;
  SizeRange value_size_;
  std::string value_bytes_;  // values are prefixes of this
};

// One connection's intended send times for an open-loop run (wrk2's method): the schedule, not
// the server's replies, decides when each request is due, so a stalled server cannot slow the
// arrivals down and its stall shows in the latencies measured from these times.
class Schedule {
 public:
  enum class Arrival { kUniform, kPoisson };
  // `connection_rate`: this connection's requests per second. Uniform arrivals are spaced exactly
  // 1/rate apart starting at start_ns + phase * (1/rate), phase in [0, 1) so that connections
  // interleave; Poisson arrivals have exponential gaps with mean 1/rate.
  Schedule(std::int64_t start_ns, double connection_rate, double phase, Arrival arrival,
           std::uint64_t seed);
  // The intended send time of the next request; advances the schedule.
  std::int64_t Next();
  std::int64_t Peek() const { return next_ns_; }

 private:
  void Advance();

  double interval_ns_;
  Arrival arrival_;
  Random random_;
  std::int64_t start_ns_;
  double offset_ns_ = 0;  // Poisson: time of the next arrival since start_ns_
  double phase_;          // uniform: request i is due at start + (phase + i) * interval
  std::uint64_t index_ = 0;
  std::int64_t next_ns_ = 0;
};

}  // namespace switchyard::loadgen
