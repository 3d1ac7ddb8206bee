#include "servers/common/key_commands.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "servers/common/command_table.h"
#include "servers/common/redis_int.h"
#include "servers/common/resp_writer.h"

namespace switchyard {

void ClientError(Metrics& metrics, std::string_view message, std::string* out) {
  metrics.RecordError(ErrorKind::kWrongArguments);
  resp::AppendError(out, message);
}

namespace {

// The reply to a write the store could not make (kOom, kAllocatorDamaged), counted.
void StoreRefusal(Store::Status status, Metrics& metrics, std::string* out) {
  const bool damaged = status == Store::Status::kAllocatorDamaged;
  metrics.RecordError(damaged ? ErrorKind::kStoreDamaged : ErrorKind::kOom);
  resp::AppendError(out, damaged ? kAllocatorDamagedError : kOomError);
}

// For a conditional write: true, its refusal replied, when the store could not make it; false when
// it was written or its condition kept it from being written (kOk, kNotWritten).
bool Refused(Store::Status status, Metrics& metrics, std::string* out) {
  if (status == Store::Status::kOk || status == Store::Status::kNotWritten) return false;
  StoreRefusal(status, metrics, out);
  return true;
}

// Redis's string2ld(): strtold over the whole argument (an embedded NUL ends it early, so it is
// refused), no leading space, no NaN, no overflow (an underflow to a non-zero value is accepted).
bool ParseRedisLongDouble(std::string_view s, long double* out) {
  char buf[5 * 1024];  // Redis's MAX_LONG_DOUBLE_CHARS
  if (s.empty() || s.size() >= sizeof buf) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  errno = 0;
  char* end = nullptr;
  const long double value = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || end != buf + s.size() ||
      (errno == ERANGE &&
       (value == HUGE_VALL || value == -HUGE_VALL || std::fpclassify(value) == FP_ZERO)) ||
      errno == EINVAL || std::isnan(value)) {
    return false;
  }
  *out = value;
  return true;
}

// Redis's ld2string() in LD_STR_HUMAN mode: 17 decimals, trailing zeros (and a bare point)
// removed, "-0" as "0". So 10.5 + 0.1 reads "10.6" and 5.0e3 reads "5000", as in Redis.
std::string FormatRedisLongDouble(long double value) {
  char buf[5 * 1024];
  int length = std::snprintf(buf, sizeof buf, "%.17Lf", value);
  if (length <= 0 || static_cast<std::size_t>(length) >= sizeof buf) return "0";
  if (std::memchr(buf, '.', length) != nullptr) {
    while (buf[length - 1] == '0') --length;
    if (buf[length - 1] == '.') --length;
  }
  if (length == 2 && buf[0] == '-' && buf[1] == '0') return "0";
  return std::string(buf, length);
}

// The keys of a multi-key command: its arguments from the second on.
std::vector<std::string_view> KeysOf(const std::vector<std::string>& args) {
  return {args.begin() + 1, args.end()};
}

// INCR, INCRBY, DECR, DECRBY: their replies and errors, as in Redis.
void IncrementBy(ServerContext& context, const std::string& key, std::int64_t delta,
                 std::string* out) {
  std::int64_t result = 0;
  const Store::Status status = context.store.Incr(key, delta, &result);
  switch (status) {
    case Store::Status::kOk:
      resp::AppendInteger(out, result);
      break;
    case Store::Status::kOverflow:
      ClientError(context.metrics, kOverflowError, out);
      break;
    case Store::Status::kNotInteger:
      ClientError(context.metrics, kNotIntegerError, out);
      break;
    default:
      StoreRefusal(status, context.metrics, out);
  }
}

// The increment of INCRBY or DECRBY (negated), parsed as Redis does; false after an error reply.
bool ParseDelta(Metrics& metrics, const std::string& arg, bool negate, std::int64_t* delta,
                std::string* out) {
  if (!ParseRedisInt64(arg, delta)) {
    ClientError(metrics, kNotIntegerError, out);
    return false;
  }
  if (negate) {
    if (*delta == std::numeric_limits<std::int64_t>::min()) {
      ClientError(metrics, "ERR decrement would overflow", out);
      return false;
    }
    *delta = -*delta;
  }
  return true;
}

void IncrementByFloat(ServerContext& context, const std::vector<std::string>& args,
                      std::string* out) {
  long double increment = 0;
  if (!ParseRedisLongDouble(args[2], &increment)) {
    ClientError(context.metrics, kNotFloatError, out);
    return;
  }
  std::string_view error;
  std::string result;
  const Store::Status status =
      context.store.Update(args[1], [&](const std::string_view* current, std::string* replacement) {
        long double value = 0;
        if (current != nullptr && !ParseRedisLongDouble(*current, &value)) {
          error = kNotFloatError;
          return false;
        }
        value += increment;
        if (std::isnan(value) || std::isinf(value)) {
          error = "ERR increment would produce NaN or Infinity";
          return false;
        }
        *replacement = result = FormatRedisLongDouble(value);
        return true;
      });
  if (status != Store::Status::kOk) {
    StoreRefusal(status, context.metrics, out);
  } else if (!error.empty()) {
    ClientError(context.metrics, error, out);
  } else {
    resp::AppendBulk(out, result);
  }
}

void Append(ServerContext& context, const std::vector<std::string>& args, std::string* out) {
  const std::size_t limit = context.config.max_bulk_bytes;
  bool too_long = false;
  std::size_t length = 0;
  const Store::Status status =
      context.store.Update(args[1], [&](const std::string_view* current, std::string* replacement) {
        const std::size_t before = current != nullptr ? current->size() : 0;
        length = before + args[2].size();
        if (length > limit) {
          too_long = true;
          return false;
        }
        replacement->reserve(length);
        if (current != nullptr) replacement->assign(*current);
        replacement->append(args[2]);
        return true;
      });
  if (status != Store::Status::kOk) {
    StoreRefusal(status, context.metrics, out);
  } else if (too_long) {
    ClientError(context.metrics, "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                out);
  } else {
    resp::AppendInteger(out, static_cast<std::int64_t>(length));
  }
}

void Strlen(ServerContext& context, const std::string& key, std::string* out) {
  std::size_t length = 0;
  context.store.Update(key, [&](const std::string_view* current, std::string*) {
    length = current != nullptr ? current->size() : 0;
    return false;
  });
  resp::AppendInteger(out, static_cast<std::int64_t>(length));
}

// SET key value [NX|XX] [GET]. The expiry options are refused by name rather than ignored: a
// client that asked for a key to expire must not believe it will.
void Set(ServerContext& context, const std::vector<std::string>& args, std::string* out) {
  Store::SetIf condition = Store::SetIf::kAlways;
  bool get = false;
  std::string_view expiry;  // the one expiry option given (Redis allows one kind)
  for (std::size_t i = 3; i < args.size(); ++i) {
    const std::string& option = args[i];
    const bool has_next = i + 1 < args.size();
    if (EqualsIgnoreCase(option, "nx") && condition != Store::SetIf::kPresent) {
      condition = Store::SetIf::kAbsent;
    } else if (EqualsIgnoreCase(option, "xx") && condition != Store::SetIf::kAbsent) {
      condition = Store::SetIf::kPresent;
    } else if (EqualsIgnoreCase(option, "get")) {
      get = true;
    } else if (EqualsIgnoreCase(option, "keepttl") &&
               (expiry.empty() || EqualsIgnoreCase(expiry, "keepttl"))) {
      expiry = option;
    } else if ((EqualsIgnoreCase(option, "ex") || EqualsIgnoreCase(option, "px") ||
                EqualsIgnoreCase(option, "exat") || EqualsIgnoreCase(option, "pxat")) &&
               has_next && (expiry.empty() || EqualsIgnoreCase(expiry, option))) {
      expiry = option;
      ++i;  // its time
    } else {
      ClientError(context.metrics, "ERR syntax error", out);
      return;
    }
  }
  if (!expiry.empty()) {
    ClientError(context.metrics,
                "ERR SET " + std::string(expiry) +
                    ": key expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported; keys stay until "
                    "deleted",
                out);
    return;
  }
  std::string old;
  bool had_old = false;
  const Store::Status status =
      context.store.SetWith(args[1], args[2], condition, get ? &old : nullptr, &had_old);
  if (Refused(status, context.metrics, out)) return;
  if (get) {
    had_old ? resp::AppendBulk(out, old) : resp::AppendNull(out);
  } else if (status == Store::Status::kOk) {
    resp::AppendSimple(out, "OK");
  } else {
    resp::AppendNull(out);
  }
}

void MultiGet(ServerContext& context, const std::vector<std::string>& args, std::string* out) {
  std::vector<std::optional<std::string>> values;
  context.store.MultiGet(KeysOf(args), &values);
  resp::AppendArrayHeader(out, values.size());
  for (const auto& value : values) value ? resp::AppendBulk(out, *value) : resp::AppendNull(out);
}

// MSET and MSETNX: every pair or none.
void MultiSet(ServerContext& context, const std::vector<std::string>& args, bool if_all_absent,
              std::string* out) {
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  pairs.reserve(args.size() / 2);
  for (std::size_t i = 1; i + 1 < args.size(); i += 2) pairs.emplace_back(args[i], args[i + 1]);
  const Store::Status status = context.store.MultiSet(pairs, if_all_absent);
  if (Refused(status, context.metrics, out)) return;
  if (if_all_absent) {
    resp::AppendInteger(out, status == Store::Status::kOk ? 1 : 0);
  } else {
    resp::AppendSimple(out, "OK");
  }
}

// FLUSHDB and FLUSHALL: one database, so the same. ASYNC and SYNC are accepted; either frees now.
void Flush(ServerContext& context, const std::vector<std::string>& args, std::string* out) {
  if (args.size() > 2 || (args.size() == 2 && !EqualsIgnoreCase(args[1], "sync") &&
                          !EqualsIgnoreCase(args[1], "async"))) {
    ClientError(context.metrics, "ERR syntax error", out);
    return;
  }
  context.store.Clear();
  resp::AppendSimple(out, "OK");
}

}  // namespace

bool ExecuteKeyCommand(CommandId id, ServerContext& context, std::vector<std::string>& args,
                       std::string* out) {
  Store& store = context.store;
  Metrics& metrics = context.metrics;
  switch (id) {
    case CommandId::kGet: {
      std::string value;
      if (store.Get(args[1], &value) == Store::Status::kOk) {
        resp::AppendBulk(out, value);
      } else {
        resp::AppendNull(out);
      }
      break;
    }
    case CommandId::kSet:
      Set(context, args, out);
      break;
    case CommandId::kSetNx:
    case CommandId::kGetSet: {
      const bool nx = id == CommandId::kSetNx;
      std::string old;
      bool had_old = false;
      const Store::Status status =
          store.SetWith(args[1], args[2], nx ? Store::SetIf::kAbsent : Store::SetIf::kAlways,
                        nx ? nullptr : &old, &had_old);
      if (Refused(status, metrics, out)) break;
      if (nx) {
        resp::AppendInteger(out, status == Store::Status::kOk ? 1 : 0);
      } else {
        had_old ? resp::AppendBulk(out, old) : resp::AppendNull(out);
      }
      break;
    }
    case CommandId::kGetDel: {
      std::string value;
      if (store.GetDel(args[1], &value) == Store::Status::kOk) {
        resp::AppendBulk(out, value);
      } else {
        resp::AppendNull(out);
      }
      break;
    }
    case CommandId::kDel:
    case CommandId::kUnlink:  // values are freed at once either way
      resp::AppendInteger(out, static_cast<std::int64_t>(store.DelMany(KeysOf(args))));
      break;
    case CommandId::kExists:
      resp::AppendInteger(out, static_cast<std::int64_t>(store.CountExisting(KeysOf(args))));
      break;
    case CommandId::kType:
      resp::AppendSimple(out, store.CountExisting({args[1]}) > 0 ? "string" : "none");
      break;
    case CommandId::kDbSize:
      resp::AppendInteger(out, static_cast<std::int64_t>(store.key_count()));
      break;
    case CommandId::kFlushDb:
    case CommandId::kFlushAll:
      Flush(context, args, out);
      break;
    case CommandId::kIncr:
    case CommandId::kDecr:
      IncrementBy(context, args[1], id == CommandId::kIncr ? 1 : -1, out);
      break;
    case CommandId::kIncrBy:
    case CommandId::kDecrBy: {
      std::int64_t delta = 0;
      if (ParseDelta(metrics, args[2], id == CommandId::kDecrBy, &delta, out)) {
        IncrementBy(context, args[1], delta, out);
      }
      break;
    }
    case CommandId::kIncrByFloat:
      IncrementByFloat(context, args, out);
      break;
    case CommandId::kAppend:
      Append(context, args, out);
      break;
    case CommandId::kStrlen:
      Strlen(context, args[1], out);
      break;
    case CommandId::kMGet:
      MultiGet(context, args, out);
      break;
    case CommandId::kMSet:
    case CommandId::kMSetNx:
      MultiSet(context, args, id == CommandId::kMSetNx, out);
      break;
    default:
      return false;
  }
  return true;
}

}  // namespace switchyard
