#include "servers/common/commands.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <thread>

#include "servers/common/command_table.h"
#include "servers/common/redis_int.h"
#include "servers/common/resp_writer.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "dev"
#endif

namespace switchyard {
namespace {

// Redis's own wording, so clients and people recognise it.
void UnknownCommand(const std::vector<std::string>& args, std::string* out) {
  std::string quoted;
  for (std::size_t i = 1; i < args.size() && quoted.size() < 128; ++i) {
    quoted += "'" + args[i].substr(0, 128 - quoted.size()) + "' ";
  }
  resp::AppendError(out, "ERR unknown command '" + args[0].substr(0, 128) +
                             "', with args beginning with: " + quoted);
}

void WrongArguments(std::string_view name, std::string* out) {
  resp::AppendError(out, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

// The handful of parameters clients ask for at start (redis-benchmark reads "save" and
// "appendonly"); anything else matches nothing, as an unknown glob does in Redis.
void ConfigGet(const ServerContext& context, const std::vector<std::string>& args,
               std::string* out) {
  const ServerConfig& config = context.config;
  const std::pair<std::string_view, std::string> params[] = {
      {"save", ""},
      {"appendonly", "no"},
      {"databases", "1"},
      {"maxclients", std::to_string(config.max_clients)},
      {"maxmemory", std::to_string(config.store_bytes)},
      {"proto-max-bulk-len", std::to_string(config.max_bulk_bytes)},
      {"client-query-buffer-limit", std::to_string(config.query_buffer_bytes)},
  };
  std::vector<const std::pair<std::string_view, std::string>*> found;
  for (std::size_t i = 2; i < args.size(); ++i) {
    for (const auto& param : params) {
      if ((args[i] == "*" || EqualsIgnoreCase(args[i], param.first)) &&
          std::find(found.begin(), found.end(), &param) == found.end()) {
        found.push_back(&param);
      }
    }
  }
  resp::AppendArrayHeader(out, found.size() * 2);
  for (const auto* param : found) {
    resp::AppendBulk(out, param->first);
    resp::AppendBulk(out, param->second);
  }
}

// Redis's clientSetName(): printable ASCII without spaces; an empty name clears it.
bool SetClientName(const std::string& name, ConnectionState& connection, std::string* out) {
  for (char c : name) {
    if (c < '!' || c > '~') {
      resp::AppendError(out,
                        "ERR Client names cannot contain spaces, newlines or special characters.");
      return false;
    }
  }
  connection.name = name;
  return true;
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]. RESP2 only; AUTH is accepted as
// Redis's passwordless default user accepts it.
void Hello(const std::vector<std::string>& args, ConnectionState& connection, std::string* out) {
  if (args.size() > 1) {
    std::int64_t version = 0;
    if (!ParseRedisInt64(args[1], &version)) {
      resp::AppendError(out, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (version != 2) {
      resp::AppendError(out, "NOPROTO unsupported protocol version");
      return;
    }
  }
  const std::string* name = nullptr;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::size_t more = args.size() - 1 - i;
    if (EqualsIgnoreCase(args[i], "auth") && more >= 2) {
      i += 2;
    } else if (EqualsIgnoreCase(args[i], "setname") && more >= 1) {
      name = &args[++i];
    } else {
      resp::AppendError(out, "ERR Syntax error in HELLO option '" + args[i].substr(0, 128) + "'");
      return;
    }
  }
  if (name != nullptr && !SetClientName(*name, connection, out)) return;
  // RESP2 has no map type, so HELLO's map is a flat array of field, value pairs, as in Redis.
  resp::AppendArrayHeader(out, 14);
  resp::AppendBulk(out, "server");
  resp::AppendBulk(out, "switchyard");
  resp::AppendBulk(out, "version");
  resp::AppendBulk(out, SWITCHYARD_VERSION);
  resp::AppendBulk(out, "proto");
  resp::AppendInteger(out, 2);
  resp::AppendBulk(out, "id");
  resp::AppendInteger(out, static_cast<std::int64_t>(connection.id));
  resp::AppendBulk(out, "mode");
  resp::AppendBulk(out, "standalone");
  resp::AppendBulk(out, "role");
  resp::AppendBulk(out, "master");
  resp::AppendBulk(out, "modules");
  resp::AppendArrayHeader(out, 0);
}

// CLIENT ID, GETNAME, SETNAME (kept for the connection's life), and SETINFO (accepted and
// forgotten: nothing here reads a library's name or version).
void Client(const std::vector<std::string>& args, ConnectionState& connection, std::string* out) {
  const std::string& sub = args[1];
  const auto arity = [&](std::size_t expected, std::string_view name) {
    if (args.size() == expected) return true;
    WrongArguments("client|" + std::string(name), out);
    return false;
  };
  if (EqualsIgnoreCase(sub, "setname")) {
    if (arity(3, "setname") && SetClientName(args[2], connection, out)) {
      resp::AppendSimple(out, "OK");
    }
  } else if (EqualsIgnoreCase(sub, "setinfo")) {
    if (arity(4, "setinfo")) resp::AppendSimple(out, "OK");
  } else if (EqualsIgnoreCase(sub, "getname")) {
    if (arity(2, "getname")) {
      connection.name.empty() ? resp::AppendNull(out) : resp::AppendBulk(out, connection.name);
    }
  } else if (EqualsIgnoreCase(sub, "id")) {
    if (arity(2, "id")) resp::AppendInteger(out, static_cast<std::int64_t>(connection.id));
  } else {
    resp::AppendError(out, "ERR unknown subcommand '" + sub.substr(0, 128) + "'. Try CLIENT HELP.");
  }
}

}  // namespace

const std::vector<std::string>& CommandLabels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> v;
    for (const auto& spec : CommandTable()) {
      // The metrics index labels by CommandId: the table must hold each id once, in order.
      if (static_cast<std::size_t>(spec.id) != v.size()) std::abort();
      v.emplace_back(spec.name);
    }
    if (v.size() != static_cast<std::size_t>(CommandId::kUnknown)) std::abort();
    v.emplace_back("unknown");
    return v;
  }();
  return labels;
}

namespace {

bool IsHttpLine(std::string_view name) {
  return EqualsIgnoreCase(name, "post") || EqualsIgnoreCase(name, "host:");
}

// The reply to a write the store could not make (kOom, kAllocatorDamaged), counted.
void StoreRefusal(Store::Status status, Metrics& metrics, std::string* out) {
  const bool damaged = status == Store::Status::kAllocatorDamaged;
  metrics.RecordError(damaged ? ErrorKind::kStoreDamaged : ErrorKind::kOom);
  resp::AppendError(out, damaged ? kAllocatorDamagedError : kOomError);
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

// One error reply, counted as the client's mistake.
void ClientError(Metrics& metrics, std::string_view message, std::string* out) {
  metrics.RecordError(ErrorKind::kWrongArguments);
  resp::AppendError(out, message);
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
  if (status != Store::Status::kOk && status != Store::Status::kNotWritten) {
    StoreRefusal(status, context.metrics, out);
  } else if (get) {
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
  if (status != Store::Status::kOk && status != Store::Status::kNotWritten) {
    StoreRefusal(status, context.metrics, out);
  } else if (if_all_absent) {
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

// SELECT: database 0 is the only one, as in a Redis started with --databases 1.
void Select(ServerContext& context, const std::string& index, std::string* out) {
  std::int64_t number = 0;
  if (!ParseRedisInt64(index, &number)) {
    ClientError(context.metrics, kNotIntegerError, out);
  } else if (number < std::numeric_limits<int>::min() || number > std::numeric_limits<int>::max()) {
    ClientError(context.metrics,
                "ERR value is out of range, value must between -2147483648 and 2147483647", out);
  } else if (number != 0) {
    ClientError(context.metrics, "ERR DB index is out of range", out);
  } else {
    resp::AppendSimple(out, "OK");
  }
}

void Info(const ServerContext& context, std::string* out) {
  std::string text =
      "# Server\r\nredis_version:7.0.0\r\nswitchyard_version:" + std::string(SWITCHYARD_VERSION) +
      "\r\nswitchyard_model:" + context.config.model +
      "\r\nprocess_id:" + std::to_string(getpid()) +
      "\r\n\r\n# Stats\r\nstore_lock_repairs:" + std::to_string(context.store.lock_recoveries()) +
      "\r\nstore_allocator_damaged:" + (context.store.allocator_damaged() ? "1" : "0") +
      "\r\n\r\n# Keyspace\r\n";
  // As Redis, a database is listed only when it holds keys.
  if (const std::size_t keys = context.store.key_count(); keys > 0) {
    text += "db0:keys=" + std::to_string(keys) + ",expires=0,avg_ttl=0\r\n";
  }
  resp::AppendBulk(out, text);
}

}  // namespace

void BurnCpu(std::chrono::microseconds micros) {
  // Thread CPU time, not wall time: a preempted request still burns exactly what it asked for.
  timespec start{}, now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  const std::int64_t budget_ns = micros.count() * 1000;
  volatile std::uint64_t sink = 0;
  do {
    for (int i = 0; i < 256; ++i) sink = sink + static_cast<std::uint64_t>(i);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1'000'000'000LL + (now.tv_nsec - start.tv_nsec) <
           budget_ns);
}

CommandOutcome ExecuteCommand(ServerContext& context, std::vector<std::string>& args,
                              ConnectionState& connection, CommandId* id, std::string* out) {
  Metrics& metrics = context.metrics;
  Store& store = context.store;
  if (IsHttpLine(args[0])) {
    // Redis 7's securityWarningCommand(): "POST" and "Host:" mean an HTTP client (or a browser
    // tricked into talking to us, the cross-protocol attack). Close at once, without a reply.
    *id = CommandId::kUnknown;
    metrics.RecordError(ErrorKind::kProtocol);
    return {CommandOutcome::Kind::kClose};
  }
  const CommandSpec* spec = FindCommand(args[0]);
  if (spec == nullptr) {
    *id = CommandId::kUnknown;
    metrics.RecordError(ErrorKind::kUnknownCommand);
    UnknownCommand(args, out);
    return {};
  }
  *id = spec->id;
  const auto argc = static_cast<int>(args.size());
  if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity) ||
      (spec->id == CommandId::kPing && argc > 2) ||
      ((spec->id == CommandId::kMSet || spec->id == CommandId::kMSetNx) && argc % 2 == 0)) {
    metrics.RecordError(ErrorKind::kWrongArguments);
    WrongArguments(spec->name, out);
    return {};
  }

  switch (spec->id) {
    case CommandId::kPing:
      argc == 1 ? resp::AppendSimple(out, "PONG") : resp::AppendBulk(out, args[1]);
      break;
    case CommandId::kEcho:
      resp::AppendBulk(out, args[1]);
      break;
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
      const bool nx = spec->id == CommandId::kSetNx;
      std::string old;
      bool had_old = false;
      const Store::Status status =
          store.SetWith(args[1], args[2], nx ? Store::SetIf::kAbsent : Store::SetIf::kAlways,
                        nx ? nullptr : &old, &had_old);
      if (status != Store::Status::kOk && status != Store::Status::kNotWritten) {
        StoreRefusal(status, metrics, out);
      } else if (nx) {
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
      IncrementBy(context, args[1], spec->id == CommandId::kIncr ? 1 : -1, out);
      break;
    case CommandId::kIncrBy:
    case CommandId::kDecrBy: {
      std::int64_t delta = 0;
      if (ParseDelta(metrics, args[2], spec->id == CommandId::kDecrBy, &delta, out)) {
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
      MultiSet(context, args, spec->id == CommandId::kMSetNx, out);
      break;
    case CommandId::kQuit:
      resp::AppendSimple(out, "OK");
      return {CommandOutcome::Kind::kClose};
    case CommandId::kCommand:
      if (!CommandCommand(args, out)) metrics.RecordError(ErrorKind::kWrongArguments);
      break;
    case CommandId::kConfig:
      if (EqualsIgnoreCase(args[1], "get") && argc >= 3) {
        ConfigGet(context, args, out);
      } else {
        ClientError(metrics, "ERR only CONFIG GET is supported", out);
      }
      break;
    case CommandId::kClient:
      Client(args, connection, out);
      break;
    case CommandId::kHello:
      Hello(args, connection, out);
      break;
    case CommandId::kSelect:
      Select(context, args[1], out);
      break;
    case CommandId::kInfo:
      Info(context, out);
      break;
    case CommandId::kSyCpu:
    case CommandId::kSyWait:
    case CommandId::kSyBlock: {
      std::int64_t micros = 0;
      if (!ParseRedisInt64(args[1], &micros) || micros < 0 || micros > kMaxSimulatedMicros) {
        metrics.RecordError(ErrorKind::kWrongArguments);
        resp::AppendError(
            out, "ERR usec must be an integer from 0 to " + std::to_string(kMaxSimulatedMicros));
        break;
      }
      const std::chrono::microseconds duration(micros);
      if (spec->id == CommandId::kSyWait) return {CommandOutcome::Kind::kWait, duration};
      if (spec->id == CommandId::kSyCpu) {
        BurnCpu(duration);
      } else {
        // A real blocking system call on whatever thread runs the request: in an event loop it
        // stalls every connection of that loop, which is what this command is for.
        std::this_thread::sleep_for(duration);
      }
      resp::AppendSimple(out, "OK");
      break;
    }
    case CommandId::kUnknown:
    case CommandId::kCount:
      break;
  }
  return {};
}

}  // namespace switchyard
