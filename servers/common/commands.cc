#include "servers/common/commands.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "servers/common/command_table.h"
#include "servers/common/key_commands.h"
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
  connection.name = name.empty() ? nullptr : std::make_unique<std::string>(name);
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
      connection.name ? resp::AppendBulk(out, *connection.name) : resp::AppendNull(out);
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

void FailEchoForTest(std::string_view message) {
  static const char* const failing = std::getenv("SWITCHYARD_TEST_FAIL_ECHO");
  if (failing != nullptr && message == failing) {
    throw std::runtime_error("ECHO " + std::string(message) +
                             " failed (SWITCHYARD_TEST_FAIL_ECHO)");
  }
}

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

  if (ExecuteKeyCommand(spec->id, context, args, out)) return {};
  switch (spec->id) {
    case CommandId::kPing:
      argc == 1 ? resp::AppendSimple(out, "PONG") : resp::AppendBulk(out, args[1]);
      break;
    case CommandId::kEcho:
      FailEchoForTest(args[1]);
      resp::AppendBulk(out, args[1]);
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
    default:  // the commands on keys ran above; kUnknown and kCount never get here
      break;
  }
  return {};
}

}  // namespace switchyard
