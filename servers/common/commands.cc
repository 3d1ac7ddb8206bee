#include "servers/common/commands.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "servers/common/redis_int.h"
#include "servers/common/resp_writer.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "dev"
#endif

namespace switchyard {
namespace {

struct CommandSpec {
  std::string_view name;  // lower case, as Redis prints it in errors
  CommandId id;
  int arity;  // Redis convention: N means exactly N arguments, -N means at least N
};

constexpr std::array<CommandSpec, static_cast<std::size_t>(CommandId::kUnknown)> kCommands = {{
    {"ping", CommandId::kPing, -1},
    {"echo", CommandId::kEcho, 2},
    {"get", CommandId::kGet, 2},
    {"set", CommandId::kSet, -3},
    {"del", CommandId::kDel, -2},
    {"incr", CommandId::kIncr, 2},
    {"quit", CommandId::kQuit, -1},
    {"command", CommandId::kCommand, -1},
    {"config", CommandId::kConfig, -2},
    {"client", CommandId::kClient, -2},
    {"hello", CommandId::kHello, -1},
    {"select", CommandId::kSelect, 2},
    {"info", CommandId::kInfo, -1},
    {"sy.cpu", CommandId::kSyCpu, 2},
    {"sy.wait", CommandId::kSyWait, 2},
    {"sy.block", CommandId::kSyBlock, 2},
}};

const CommandSpec* FindCommand(std::string_view name) {
  static const auto* const table = [] {
    auto* map = new std::unordered_map<std::string_view, const CommandSpec*>;
    for (const auto& spec : kCommands) (*map)[spec.name] = &spec;
    return map;
  }();
  // Lower-case into a small buffer rather than in place: errors quote the name as it was sent.
  char lower[16];
  if (name.size() > sizeof lower) return nullptr;
  for (std::size_t i = 0; i < name.size(); ++i) {
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  }
  auto it = table->find(std::string_view(lower, name.size()));
  return it == table->end() ? nullptr : it->second;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

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

void Hello(const std::vector<std::string>& args, std::uint64_t connection_id, std::string* out) {
  if (args.size() > 1 && args[1] != "2") {
    resp::AppendError(out, "NOPROTO sorry, this protocol version is not supported");
    return;
  }
  // RESP2 has no map type, so HELLO's map is a flat array of field, value pairs, as in Redis.
  resp::AppendArrayHeader(out, 14);
  resp::AppendBulk(out, "server");
  resp::AppendBulk(out, "switchyard");
  resp::AppendBulk(out, "version");
  resp::AppendBulk(out, SWITCHYARD_VERSION);
  resp::AppendBulk(out, "proto");
  resp::AppendInteger(out, 2);
  resp::AppendBulk(out, "id");
  resp::AppendInteger(out, static_cast<std::int64_t>(connection_id));
  resp::AppendBulk(out, "mode");
  resp::AppendBulk(out, "standalone");
  resp::AppendBulk(out, "role");
  resp::AppendBulk(out, "master");
  resp::AppendBulk(out, "modules");
  resp::AppendArrayHeader(out, 0);
}

void Client(const std::vector<std::string>& args, std::uint64_t connection_id, std::string* out) {
  const std::string& sub = args[1];
  if (EqualsIgnoreCase(sub, "setname") || EqualsIgnoreCase(sub, "setinfo")) {
    resp::AppendSimple(out, "OK");  // accepted and forgotten: names are not tracked
  } else if (EqualsIgnoreCase(sub, "getname")) {
    resp::AppendNull(out);
  } else if (EqualsIgnoreCase(sub, "id")) {
    resp::AppendInteger(out, static_cast<std::int64_t>(connection_id));
  } else {
    resp::AppendError(out, "ERR unknown subcommand '" + sub.substr(0, 128) + "'. Try CLIENT HELP.");
  }
}

}  // namespace

const std::vector<std::string>& CommandLabels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> v;
    for (const auto& spec : kCommands) v.emplace_back(spec.name);
    v.emplace_back("unknown");
    return v;
  }();
  return labels;
}

namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view lower_b) {
  return a.size() == lower_b.size() &&
         std::equal(a.begin(), a.end(), lower_b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == y;
         });
}

bool IsHttpLine(std::string_view name) {
  return EqualsIgnoringCase(name, "post") || EqualsIgnoringCase(name, "host:");
}

// The reply to a write the store could not make (kOom, kAllocatorDamaged), counted.
void StoreRefusal(Store::Status status, Metrics& metrics, std::string* out) {
  const bool damaged = status == Store::Status::kAllocatorDamaged;
  metrics.RecordError(damaged ? ErrorKind::kStoreDamaged : ErrorKind::kOom);
  resp::AppendError(out, damaged ? kAllocatorDamagedError : kOomError);
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
                              std::uint64_t connection_id, CommandId* id, std::string* out) {
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
      (spec->id == CommandId::kPing && argc > 2)) {
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
      if (argc != 3) {  // SET's options (EX, NX, ...) are outside the subset we serve
        metrics.RecordError(ErrorKind::kWrongArguments);
        resp::AppendError(out, "ERR syntax error");
      } else {
        const Store::Status status = store.Set(args[1], args[2]);
        if (status == Store::Status::kOk) {
          resp::AppendSimple(out, "OK");
        } else {
          StoreRefusal(status, metrics, out);
        }
      }
      break;
    case CommandId::kDel: {
      std::int64_t deleted = 0;
      for (int i = 1; i < argc; ++i) deleted += store.Del(args[i]) ? 1 : 0;
      resp::AppendInteger(out, deleted);
      break;
    }
    case CommandId::kIncr: {
      std::int64_t result = 0;
      const Store::Status status = store.Incr(args[1], 1, &result);
      switch (status) {
        case Store::Status::kOk:
          resp::AppendInteger(out, result);
          break;
        case Store::Status::kOverflow:
          metrics.RecordError(ErrorKind::kWrongArguments);
          resp::AppendError(out, kOverflowError);
          break;
        case Store::Status::kNotInteger:
          metrics.RecordError(ErrorKind::kWrongArguments);
          resp::AppendError(out, kNotIntegerError);
          break;
        default:
          StoreRefusal(status, metrics, out);
      }
      break;
    }
    case CommandId::kQuit:
      resp::AppendSimple(out, "OK");
      return {CommandOutcome::Kind::kClose};
    case CommandId::kCommand:
      resp::AppendArrayHeader(out, 0);  // no command docs: clients fall back to plain behaviour
      break;
    case CommandId::kConfig:
      if (EqualsIgnoreCase(args[1], "get") && argc >= 3) {
        ConfigGet(context, args, out);
      } else {
        metrics.RecordError(ErrorKind::kWrongArguments);
        resp::AppendError(out, "ERR only CONFIG GET is supported");
      }
      break;
    case CommandId::kClient:
      Client(args, connection_id, out);
      break;
    case CommandId::kHello:
      Hello(args, connection_id, out);
      break;
    case CommandId::kSelect:
      if (args[1] == "0") {
        resp::AppendSimple(out, "OK");
      } else {
        resp::AppendError(out, "ERR DB index is out of range");
      }
      break;
    case CommandId::kInfo:
      resp::AppendBulk(out, "# Server\r\nredis_version:7.0.0\r\nswitchyard_version:" +
                                std::string(SWITCHYARD_VERSION) +
                                "\r\nswitchyard_model:" + context.config.model +
                                "\r\nprocess_id:" + std::to_string(getpid()) +
                                "\r\n\r\n# Stats\r\nstore_lock_repairs:" +
                                std::to_string(context.store.lock_recoveries()) +
                                "\r\nstore_allocator_damaged:" +
                                (context.store.allocator_damaged() ? "1" : "0") + "\r\n");
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
