#include "loadgen/workload.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "loadgen/resp_reply.h"

namespace switchyard::loadgen {
namespace {

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

bool ToUnsigned(std::string_view text, std::uint64_t* value) {
  if (text.empty()) return false;
  const auto [ptr, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && ptr == text.data() + text.size();
}

std::size_t ParseSize(std::string_view text) {
  std::uint64_t multiplier = 1;
  std::string_view digits = text;
  if (!text.empty()) {
    const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(text.back())));
    if (unit == 'k') multiplier = 1024;
    if (unit == 'm') multiplier = 1024 * 1024;
    if (multiplier != 1) digits.remove_suffix(1);
  }
  std::uint64_t value = 0;
  if (!ToUnsigned(digits, &value) || value > (std::uint64_t{512} << 20) / multiplier) {
    throw std::invalid_argument("--value-size: '" + std::string(text) +
                                "' is not a size up to 512m (like 64, 4k, 1m)");
  }
  return static_cast<std::size_t>(value * multiplier);
}

// A value the server stores and echoes: printable, so captures and redis-cli output stay readable.
std::string MakeValueBytes(std::size_t size) {
  std::string bytes(size, 'x');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + i % 26);
  return bytes;
}

double Zeta(std::uint64_t n, double theta) {
  double sum = 0;
  for (std::uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

// Appends a key number as exactly 12 digits and the CRLF ending its bulk string. Fixed width, as
// redis-benchmark's __rand_int__, so every request of a kind has one size; two digits a step.
void AppendKeyDigits(std::string& out, std::uint64_t number) {
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  const std::size_t at = out.size();
  out.resize(at + 14);
  char* digits = out.data() + at;
  for (int i = 10; i >= 0; i -= 2) {
    const auto pair = static_cast<std::size_t>(number % 100) * 2;
    number /= 100;
    digits[i] = kPairs[pair];
    digits[i + 1] = kPairs[pair + 1];
  }
  digits[12] = '\r';
  digits[13] = '\n';
}

constexpr std::size_t kKeyDigits = 12;

// Counters live apart from SET's keys: INCR on a non-integer value is an error.
std::string_view KeyPrefix(CommandKind kind) {
  return kind == CommandKind::kIncr || kind == CommandKind::kIncrBy ? "counter:" : "key:";
}

// Appends `bytes` as a bulk string: its length line, the bytes, CRLF.
void AppendBulk(std::string& out, std::string_view bytes) {
  char length[24];
  length[0] = '$';
  char* end = std::to_chars(length + 1, length + sizeof length - 2, bytes.size()).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(length, end);
  out.append(bytes);
  out.append("\r\n", 2);
}

}  // namespace

std::vector<MixEntry> ParseMix(std::string_view text) {
  static const std::pair<std::string_view, CommandKind> kNames[] = {
      {"get", CommandKind::kGet},         {"set", CommandKind::kSet},
      {"echo", CommandKind::kEcho},       {"incr", CommandKind::kIncr},
      {"incrby", CommandKind::kIncrBy},   {"mget", CommandKind::kMGet},
      {"mset", CommandKind::kMSet},       {"ping", CommandKind::kPing},
      {"sy.cpu", CommandKind::kSyCpu},    {"sy.wait", CommandKind::kSyWait},
      {"sy.block", CommandKind::kSyBlock}};
  std::vector<MixEntry> mix;
  for (const std::string_view entry : Split(text, ',')) {
    const auto fields = Split(entry, ':');
    const auto bad = [&](const std::string& why) {
      return std::invalid_argument("--mix: '" + std::string(entry) + "': " + why);
    };
    MixEntry parsed{};
    bool known = false;
    for (const auto& [name, kind] : kNames) {
      if (fields[0] == name) {
        parsed.kind = kind;
        known = true;
      }
    }
    if (!known) {
      throw bad(
          "unknown command (get, set, echo, incr, incrby, mget, mset, ping, sy.cpu, sy.wait, "
          "sy.block)");
    }
    const bool simulated = parsed.kind == CommandKind::kSyCpu ||
                           parsed.kind == CommandKind::kSyWait ||
                           parsed.kind == CommandKind::kSyBlock;
    const bool multi_key = parsed.kind == CommandKind::kMGet || parsed.kind == CommandKind::kMSet;
    std::size_t weight_field = 1;
    if (simulated) {
      if (fields.size() < 2 || !ToUnsigned(fields[1], &parsed.micros)) {
        throw bad("simulated work needs its microseconds, like sy.cpu:100 or sy.cpu:100:5");
      }
      weight_field = 2;
    } else if (multi_key) {
      if (fields.size() < 2 || !ToUnsigned(fields[1], &parsed.keys) || parsed.keys == 0 ||
          parsed.keys > kMaxKeysPerRequest) {
        throw bad(std::string(fields[0]) + " needs its number of keys a request, from 1 to " +
                  std::to_string(kMaxKeysPerRequest) + ", like " + std::string(fields[0]) +
                  ":10 or " + std::string(fields[0]) + ":10:30");
      }
      weight_field = 2;
    }
    if (fields.size() > weight_field + 1) throw bad("too many ':' fields");
    if (fields.size() == weight_field + 1 &&
        (!ToUnsigned(fields[weight_field], &parsed.weight) || parsed.weight == 0)) {
      throw bad("the weight must be a positive integer");
    }
    mix.push_back(parsed);
  }
  return mix;
}

SizeRange ParseSizeRange(std::string_view text) {
  const std::size_t dash = text.find('-');
  SizeRange range;
  range.min = ParseSize(text.substr(0, dash));
  range.max = dash == std::string_view::npos ? range.min : ParseSize(text.substr(dash + 1));
  if (range.max < range.min) {
    throw std::invalid_argument("--value-size: the range '" + std::string(text) + "' is reversed");
  }
  return range;
}

KeyChooser::KeyChooser(std::uint64_t keys, std::string_view distribution) : keys_(keys) {
  if (keys == 0) throw std::invalid_argument("--keys must be at least 1");
  if (distribution == "uniform") return;
  if (distribution.substr(0, 7) != "zipfian") {
    throw std::invalid_argument("--key-dist: '" + std::string(distribution) +
                                "' is neither uniform nor zipfian[:theta]");
  }
  zipfian_ = true;
  theta_ = 0.99;
  if (distribution.size() > 7) {
    if (distribution[7] != ':') throw std::invalid_argument("--key-dist: expected zipfian:THETA");
    const std::string number(distribution.substr(8));
    char* end = nullptr;
    theta_ = std::strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0' || !(theta_ > 0 && theta_ < 1)) {
      throw std::invalid_argument("--key-dist: zipfian theta must be in (0, 1), got '" + number +
                                  "'");
    }
  }
  if (keys > 100'000'000) throw std::invalid_argument("--key-dist zipfian: at most 100000000 keys");
  // Gray et al., "Quickly generating billion-record synthetic databases" (as YCSB does).
  zetan_ = Zeta(keys, theta_);
  alpha_ = 1.0 / (1.0 - theta_);
  const double zeta2 = Zeta(2, theta_);
  eta_ = (1 - std::pow(2.0 / static_cast<double>(keys), 1 - theta_)) / (1 - zeta2 / zetan_);
}

std::uint64_t KeyChooser::Next(Random& random) const {
  if (!zipfian_) return random.Below(keys_);
  const double u = random.Unit();
  const double uz = u * zetan_;
  if (uz < 1.0) return 0;
  if (uz < 1.0 + std::pow(0.5, theta_)) return keys_ > 1 ? 1 : 0;
  const auto rank = static_cast<std::uint64_t>(static_cast<double>(keys_) *
                                               std::pow(eta_ * u - eta_ + 1, alpha_));
  return rank < keys_ ? rank : keys_ - 1;
}

Workload::Workload(std::vector<MixEntry> mix, std::uint64_t keys, std::string_view key_distribution,
                   SizeRange value_size)
    : mix_(std::move(mix)),
      keys_(keys, key_distribution),
      value_size_(value_size),
      value_bytes_(MakeValueBytes(value_size.max)) {
  if (mix_.empty()) throw std::invalid_argument("--mix is empty");
  for (const MixEntry& entry : mix_) {
    total_weight_ += entry.weight;
    Template request;
    // Exactly the bytes AppendCommand writes for these arguments: the multibulk header counting
    // them all, the command name, then each key's length line and prefix before its digits.
    const auto keyed = [&](std::string_view name, std::uint64_t count, std::size_t args_a_key) {
      const std::string_view prefix = KeyPrefix(entry.kind);
      request.keys = count;
      AppendCommand(request.head, {name});
      request.head.replace(1, 1, std::to_string(1 + count * args_a_key));
      request.next_key = "$" + std::to_string(prefix.size() + kKeyDigits) + "\r\n";
      request.next_key += prefix;
      request.head += request.next_key;
    };
    switch (entry.kind) {
      case CommandKind::kGet:
        keyed("GET", 1, 1);
        break;
      case CommandKind::kSet:
        keyed("SET", 1, 2);
        request.has_value = true;
        break;
      case CommandKind::kIncr:
        keyed("INCR", 1, 1);
        break;
      case CommandKind::kIncrBy:
        keyed("INCRBY", 1, 2);
        request.has_delta = true;
        break;
      case CommandKind::kMGet:
        keyed("MGET", entry.keys, 1);
        break;
      case CommandKind::kMSet:
        keyed("MSET", entry.keys, 2);
        request.has_value = true;
        break;
      case CommandKind::kEcho:
        request.head = "*2\r\n$4\r\nECHO\r\n";
        request.has_value = true;
        break;
      case CommandKind::kPing:
        AppendCommand(request.head, {"PING"});
        break;
      case CommandKind::kSyCpu:
      case CommandKind::kSyWait:
      case CommandKind::kSyBlock: {
        const char* name = entry.kind == CommandKind::kSyCpu    ? "SY.CPU"
                           : entry.kind == CommandKind::kSyWait ? "SY.WAIT"
                                                                : "SY.BLOCK";
        AppendCommand(request.head, {name, std::to_string(entry.micros)});
        break;
      }
    }
    templates_.push_back(std::move(request));
  }
}

const MixEntry& Workload::Pick(Random& random) const {
  if (mix_.size() == 1) return mix_[0];
  std::uint64_t pick = random.Below(total_weight_);
  for (const MixEntry& candidate : mix_) {
    if (pick < candidate.weight) return candidate;
    pick -= candidate.weight;
  }
  return mix_.back();
}

std::size_t Workload::ValueSize(Random& random) const {
  if (value_size_.min == value_size_.max) return value_size_.min;  // no draw for a fixed size
  return value_size_.min + random.Below(value_size_.max - value_size_.min + 1);
}

// Draws are made in one order whatever the command: the command, a value size, the first key,
// then for each further key its value's size (MSET) and the key. So a seed gives one sequence,
// and AppendRequest and ChooseRequest make the same choices from it.
std::size_t Workload::AppendRequest(std::string& out, Random& random) const {
  const MixEntry& entry = Pick(random);
  const Template& request = templates_[static_cast<std::size_t>(&entry - mix_.data())];
  std::size_t size = ValueSize(random);
  out.append(request.head);
  if (request.keys == 0 && request.has_value) AppendBulk(out, {value_bytes_.data(), size});
  for (std::uint64_t i = 0; i < request.keys; ++i) {
    if (i > 0) {
      out.append(request.next_key);
      if (request.has_value) size = ValueSize(random);
    }
    const std::uint64_t key = keys_.Next(random);
    AppendKeyDigits(out, key);
    if (request.has_value) AppendBulk(out, {value_bytes_.data(), size});
    if (request.has_delta) {
      char delta[24];
      const char* end = std::to_chars(delta, delta + sizeof delta, IncrByDelta(key)).ptr;
      AppendBulk(out, std::string_view(delta, static_cast<std::size_t>(end - delta)));
    }
  }
  return entry.kind == CommandKind::kMGet ? static_cast<std::size_t>(request.keys) : 0;
}

void Workload::ChooseRequest(Random& random, Request* request) const {
  const MixEntry& entry = Pick(random);
  const Template& form = templates_[static_cast<std::size_t>(&entry - mix_.data())];
  request->kind = entry.kind;
  request->micros = entry.micros;
  request->delta = 0;
  request->keys.resize(static_cast<std::size_t>(form.keys));
  request->values.clear();
  std::size_t size = ValueSize(random);
  if (form.keys == 0 && form.has_value) request->values.emplace_back(value_bytes_.data(), size);
  for (std::size_t i = 0; i < request->keys.size(); ++i) {
    if (i > 0 && form.has_value) size = ValueSize(random);
    const std::uint64_t number = keys_.Next(random);
    std::string& key = request->keys[i];
    key.assign(KeyPrefix(entry.kind));
    AppendKeyDigits(key, number);
    key.resize(key.size() - 2);  // without the CRLF that ends a bulk string
    if (form.has_value) request->values.emplace_back(value_bytes_.data(), size);
    if (form.has_delta) request->delta = IncrByDelta(number);
  }
}

Schedule::Schedule(std::int64_t start_ns, double connection_rate, double phase, Arrival arrival,
                   std::uint64_t seed)
    : interval_ns_(1e9 / connection_rate),
      arrival_(arrival),
      random_(seed),
      start_ns_(start_ns),
      phase_(phase) {
  Advance();
}

// Uniform times are computed from the request's index, never by adding intervals up, so that
// rounding cannot accumulate over millions of requests.
void Schedule::Advance() {
  if (arrival_ == Arrival::kUniform) {
    next_ns_ = start_ns_ +
               static_cast<std::int64_t>((phase_ + static_cast<double>(index_)) * interval_ns_);
  } else {
    offset_ns_ += -std::log(random_.Unit()) * interval_ns_;
    next_ns_ = start_ns_ + static_cast<std::int64_t>(offset_ns_);
  }
  ++index_;
}

std::int64_t Schedule::Next() {
  const std::int64_t due = next_ns_;
  Advance();
  return due;
}

}  // namespace switchyard::loadgen
