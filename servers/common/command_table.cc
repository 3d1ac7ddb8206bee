#include "servers/common/command_table.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "servers/common/resp_writer.h"

namespace switchyard {
namespace {

// Shorthands for the argument docs below.
ArgumentDoc Key(std::string_view name = "key") { return {name, "key"}; }
ArgumentDoc Str(std::string_view name) { return {name, "string"}; }
ArgumentDoc Int(std::string_view name) { return {name, "integer"}; }
ArgumentDoc Token(std::string_view name, std::string_view token) {
  return {name, "pure-token", token};
}
ArgumentDoc Optional(ArgumentDoc doc) {
  doc.optional = true;
  return doc;
}
ArgumentDoc Multiple(ArgumentDoc doc) {
  doc.multiple = true;
  return doc;
}
ArgumentDoc OneOf(std::string_view name, std::vector<ArgumentDoc> choices) {
  return {name, "oneof", {}, false, false, std::move(choices)};
}
ArgumentDoc Block(std::string_view name, std::vector<ArgumentDoc> parts) {
  return {name, "block", {}, false, false, std::move(parts)};
}
ArgumentDoc WithToken(std::string_view token, ArgumentDoc doc) {
  doc.token = token;
  return doc;
}
ArgumentDoc FlushMode() {
  return Optional(OneOf("flush-type", {Token("async", "ASYNC"), Token("sync", "SYNC")}));
}

std::vector<CommandSpec> BuildTable() {
  // The summaries, versions and complexities are Redis 7.0's own, for the commands it has.
  // One command a row or two: it reads better than clang-format's one field a line.
  // clang-format off
  std::vector<CommandSpec> table = {
      {"ping", CommandId::kPing, -1, {"fast"}, 0, 0, 0, "connection", "Ping the server", "1.0.0",
       "O(1)", {Optional(Str("message"))}},
      {"echo", CommandId::kEcho, 2, {"fast"}, 0, 0, 0, "connection", "Echo the given string",
       "1.0.0", "O(1)", {Str("message")}},
      {"get", CommandId::kGet, 2, {"readonly", "fast"}, 1, 1, 1, "string", "Get the value of a key",
       "1.0.0", "O(1)", {Key()}},
      {"set", CommandId::kSet, -3, {"write", "denyoom"}, 1, 1, 1, "string",
       "Set the string value of a key", "1.0.0", "O(1)",
       {Key(), Str("value"), Optional(OneOf("condition", {Token("nx", "NX"), Token("xx", "XX")})),
        Optional(Token("get", "GET"))}},
      {"del", CommandId::kDel, -2, {"write"}, 1, -1, 1, "generic", "Delete a key", "1.0.0",
       "O(N) where N is the number of keys that will be removed.", {Multiple(Key())}},
      {"incr", CommandId::kIncr, 2, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Increment the integer value of a key by one", "1.0.0", "O(1)", {Key()}},
      {"quit", CommandId::kQuit, -1, {"loading", "stale", "fast", "no_auth", "allow_busy"}, 0, 0, 0,
       "connection", "Close the connection", "1.0.0", "O(1)"},
      {"command", CommandId::kCommand, -1, {"loading", "stale"}, 0, 0, 0, "server",
       "Get array of Redis command details", "2.8.13",
       "O(N) where N is the total number of commands", {}},
      {"config", CommandId::kConfig, -2, {}, 0, 0, 0, "server",
       "A container for server configuration commands (only CONFIG GET here)", "2.0.0",
       "Depends on subcommand.", {Token("get", "GET"), Multiple(Str("parameter"))}},
      {"client", CommandId::kClient, -2, {}, 0, 0, 0, "connection",
       "A container for client connection commands (ID, GETNAME, SETNAME, SETINFO here)", "2.4.0",
       "Depends on subcommand.", {Str("subcommand"), Optional(Multiple(Str("arg")))}},
      {"hello", CommandId::kHello, -1, {"noscript", "loading", "stale", "fast", "no_auth"}, 0, 0, 0,
       "connection", "Handshake with Redis (RESP2 only)", "6.0.0", "O(1)",
       {Optional(Block("arguments",
                       {Int("protover"),
                        Optional(WithToken("AUTH", Block("username-password",
                                                         {Str("username"), Str("password")}))),
                        Optional(WithToken("SETNAME", Str("clientname")))}))}},
      {"select", CommandId::kSelect, 2, {"loading", "stale", "fast"}, 0, 0, 0, "connection",
       "Change the selected database for the current connection (only 0 exists)", "1.0.0", "O(1)",
       {Int("index")}},
      {"info", CommandId::kInfo, -1, {"loading", "stale"}, 0, 0, 0, "server",
       "Get information and statistics about the server", "1.0.0", "O(1)",
       {Optional(Multiple(Str("section")))}},
      {"sy.cpu", CommandId::kSyCpu, 2, {}, 0, 0, 0, "switchyard",
       "Burn usec microseconds of CPU on whatever serves the request, then reply OK", "0.1.0",
       "O(usec)", {Int("usec")}},
      {"sy.wait", CommandId::kSyWait, 2, {}, 0, 0, 0, "switchyard",
       "Wait usec microseconds the model's own way (a downstream call), then reply OK", "0.1.0",
       "O(1)", {Int("usec")}},
      {"sy.block", CommandId::kSyBlock, 2, {}, 0, 0, 0, "switchyard",
       "Block whatever serves the request in a real sleep of usec microseconds, then reply OK",
       "0.1.0", "O(1)", {Int("usec")}},
      {"incrby", CommandId::kIncrBy, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Increment the integer value of a key by the given amount", "1.0.0", "O(1)",
       {Key(), Int("increment")}},
      {"decr", CommandId::kDecr, 2, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Decrement the integer value of a key by one", "1.0.0", "O(1)", {Key()}},
      {"decrby", CommandId::kDecrBy, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Decrement the integer value of a key by the given number", "1.0.0", "O(1)",
       {Key(), Int("decrement")}},
      {"incrbyfloat", CommandId::kIncrByFloat, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Increment the float value of a key by the given amount", "2.6.0", "O(1)",
       {Key(), {"increment", "double"}}},
      {"append", CommandId::kAppend, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Append a value to a key", "2.0.0",
       "O(1). The amortized time complexity is O(1) assuming the appended value is small and the "
       "already present value is of any size, since the dynamic string library used by Redis will "
       "double the free space available on every reallocation.",
       {Key(), Str("value")}},
      {"strlen", CommandId::kStrlen, 2, {"readonly", "fast"}, 1, 1, 1, "string",
       "Get the length of the value stored in a key", "2.2.0", "O(1)", {Key()}},
      {"setnx", CommandId::kSetNx, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Set the value of a key, only if the key does not exist", "1.0.0", "O(1)",
       {Key(), Str("value")}},
      {"getset", CommandId::kGetSet, 3, {"write", "denyoom", "fast"}, 1, 1, 1, "string",
       "Set the string value of a key and return its old value", "1.0.0", "O(1)",
       {Key(), Str("value")}},
      {"getdel", CommandId::kGetDel, 2, {"write", "fast"}, 1, 1, 1, "string",
       "Get the value of a key and delete the key", "6.2.0", "O(1)", {Key()}},
      {"mget", CommandId::kMGet, -2, {"readonly", "fast"}, 1, -1, 1, "string",
       "Get the values of all the given keys", "1.0.0",
       "O(N) where N is the number of keys to retrieve.", {Multiple(Key())}},
      {"mset", CommandId::kMSet, -3, {"write", "denyoom"}, 1, -1, 2, "string",
       "Set multiple keys to multiple values", "1.0.1",
       "O(N) where N is the number of keys to set.",
       {Multiple(Block("data", {Key(), Str("value")}))}},
      {"msetnx", CommandId::kMSetNx, -3, {"write", "denyoom"}, 1, -1, 2, "string",
       "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1",
       "O(N) where N is the number of keys to set.",
       {Multiple(Block("data", {Key(), Str("value")}))}},
      {"exists", CommandId::kExists, -2, {"readonly", "fast"}, 1, -1, 1, "generic",
       "Determine if a key exists", "1.0.0", "O(N) where N is the number of keys to check.",
       {Multiple(Key())}},
      {"unlink", CommandId::kUnlink, -2, {"write", "fast"}, 1, -1, 1, "generic",
       "Delete a key (here as DEL: values are freed at once)", "4.0.0",
       "O(1) for each key removed regardless of its size.", {Multiple(Key())}},
      {"type", CommandId::kType, 2, {"readonly", "fast"}, 1, 1, 1, "generic",
       "Determine the type stored at key (always string here)", "1.0.0", "O(1)", {Key()}},
      {"dbsize", CommandId::kDbSize, 1, {"readonly", "fast"}, 0, 0, 0, "server",
       "Return the number of keys in the selected database", "1.0.0", "O(1)"},
      {"flushdb", CommandId::kFlushDb, -1, {"write"}, 0, 0, 0, "server",
       "Remove all keys from the current database", "1.0.0",
       "O(N) where N is the number of keys in the selected database", {FlushMode()}},
      {"flushall", CommandId::kFlushAll, -1, {"write"}, 0, 0, 0, "server",
       "Remove all keys from all databases", "1.0.0",
       "O(N) where N is the total number of keys in all databases", {FlushMode()}},
  };
  // clang-format on
  std::sort(table.begin(), table.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.id < b.id; });
  return table;
}

// Redis's ACL categories, derived: enough for clients that read them to sort commands.
std::vector<std::string> Categories(const CommandSpec& spec) {
  std::vector<std::string> categories;
  const auto has = [&](std::string_view flag) {
    return std::find(spec.flags.begin(), spec.flags.end(), flag) != spec.flags.end();
  };
  if (has("write")) categories.emplace_back("@write");
  if (has("readonly")) categories.emplace_back("@read");
  if (spec.group == "string") categories.emplace_back("@string");
  if (spec.group == "generic") categories.emplace_back("@keyspace");
  if (spec.group == "connection") categories.emplace_back("@connection");
  categories.emplace_back(has("fast") ? "@fast" : "@slow");
  return categories;
}

// COMMAND INFO's ten-element entry (Redis 7): name, arity, flags, first key, last key, step, ACL
// categories, tips, key specifications, subcommands.
void AppendInfo(const CommandSpec& spec, std::string* out) {
  resp::AppendArrayHeader(out, 10);
  resp::AppendBulk(out, spec.name);
  resp::AppendInteger(out, spec.arity);
  resp::AppendArrayHeader(out, spec.flags.size());
  for (std::string_view flag : spec.flags) resp::AppendSimple(out, flag);
  resp::AppendInteger(out, spec.first_key);
  resp::AppendInteger(out, spec.last_key);
  resp::AppendInteger(out, spec.key_step);
  const std::vector<std::string> categories = Categories(spec);
  resp::AppendArrayHeader(out, categories.size());
  for (const std::string& category : categories) resp::AppendSimple(out, category);
  resp::AppendArrayHeader(out, 0);
  resp::AppendArrayHeader(out, 0);
  resp::AppendArrayHeader(out, 0);
}

// One argument's map, flattened to field, value pairs as RESP2 does with Redis's maps.
void AppendArgument(const ArgumentDoc& arg, std::string* out) {
  const bool has_flags = arg.optional || arg.multiple;
  resp::AppendArrayHeader(out, 2 * (2 + !arg.token.empty() + has_flags + !arg.arguments.empty()));
  resp::AppendBulk(out, "name");
  resp::AppendBulk(out, arg.name);
  resp::AppendBulk(out, "type");
  resp::AppendBulk(out, arg.type);
  if (!arg.token.empty()) {
    resp::AppendBulk(out, "token");
    resp::AppendBulk(out, arg.token);
  }
  if (has_flags) {
    resp::AppendBulk(out, "flags");
    resp::AppendArrayHeader(out, arg.optional + arg.multiple);
    if (arg.optional) resp::AppendSimple(out, "optional");
    if (arg.multiple) resp::AppendSimple(out, "multiple");
  }
  if (!arg.arguments.empty()) {
    resp::AppendBulk(out, "arguments");
    resp::AppendArrayHeader(out, arg.arguments.size());
    for (const ArgumentDoc& child : arg.arguments) AppendArgument(child, out);
  }
}

void AppendDocs(const CommandSpec& spec, std::string* out) {
  resp::AppendArrayHeader(out, 2 * (4 + !spec.arguments.empty()));
  resp::AppendBulk(out, "summary");
  resp::AppendBulk(out, spec.summary);
  resp::AppendBulk(out, "since");
  resp::AppendBulk(out, spec.since);
  resp::AppendBulk(out, "group");
  resp::AppendBulk(out, spec.group);
  resp::AppendBulk(out, "complexity");
  resp::AppendBulk(out, spec.complexity);
  if (!spec.arguments.empty()) {
    resp::AppendBulk(out, "arguments");
    resp::AppendArrayHeader(out, spec.arguments.size());
    for (const ArgumentDoc& arg : spec.arguments) AppendArgument(arg, out);
  }
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

const std::vector<CommandSpec>& CommandTable() {
  static const std::vector<CommandSpec>* const table = new std::vector<CommandSpec>(BuildTable());
  return *table;
}

const CommandSpec* FindCommand(std::string_view name) {
  static const auto* const index = [] {
    auto* map = new std::unordered_map<std::string_view, const CommandSpec*>;
    for (const auto& spec : CommandTable()) (*map)[spec.name] = &spec;
    return map;
  }();
  // Lower-case into a small buffer rather than in place: errors quote the name as it was sent.
  char lower[16];
  if (name.size() > sizeof lower) return nullptr;
  for (std::size_t i = 0; i < name.size(); ++i) {
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  }
  auto it = index->find(std::string_view(lower, name.size()));
  return it == index->end() ? nullptr : it->second;
}

bool CommandCommand(const std::vector<std::string>& args, std::string* out) {
  const std::vector<CommandSpec>& table = CommandTable();
  if (args.size() == 1) {
    resp::AppendArrayHeader(out, table.size());
    for (const CommandSpec& spec : table) AppendInfo(spec, out);
    return true;
  }
  const std::string& sub = args[1];
  // Redis names a subcommand's arity error "command|count" and so on.
  const auto wrong_arity = [&](std::string_view name) {
    resp::AppendError(
        out, "ERR wrong number of arguments for 'command|" + std::string(name) + "' command");
    return false;
  };
  if (EqualsIgnoreCase(sub, "count")) {
    if (args.size() != 2) return wrong_arity("count");
    resp::AppendInteger(out, static_cast<std::int64_t>(table.size()));
  } else if (EqualsIgnoreCase(sub, "list")) {
    if (args.size() != 2) {  // FILTERBY is not served
      resp::AppendError(out, "ERR syntax error");
      return false;
    }
    resp::AppendArrayHeader(out, table.size());
    for (const CommandSpec& spec : table) resp::AppendBulk(out, spec.name);
  } else if (EqualsIgnoreCase(sub, "info")) {
    if (args.size() == 2) {
      resp::AppendArrayHeader(out, table.size());
      for (const CommandSpec& spec : table) AppendInfo(spec, out);
    } else {
      resp::AppendArrayHeader(out, args.size() - 2);
      for (std::size_t i = 2; i < args.size(); ++i) {
        const CommandSpec* spec = FindCommand(args[i]);
        spec != nullptr ? AppendInfo(*spec, out) : resp::AppendNull(out);
      }
    }
  } else if (EqualsIgnoreCase(sub, "docs")) {
    std::vector<const CommandSpec*> found;
    if (args.size() == 2) {
      for (const CommandSpec& spec : table) found.push_back(&spec);
    } else {
      for (std::size_t i = 2; i < args.size(); ++i) {
        if (const CommandSpec* spec = FindCommand(args[i])) found.push_back(spec);
      }
    }
    resp::AppendArrayHeader(out, 2 * found.size());
    for (const CommandSpec* spec : found) {
      resp::AppendBulk(out, spec->name);
      AppendDocs(*spec, out);
    }
  } else if (EqualsIgnoreCase(sub, "help")) {
    if (args.size() != 2) return wrong_arity("help");
    const std::string_view lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands in this server.",
        "LIST",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple commands.",
        "    By default all commands are shown.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple commands.",
        "    By default all commands are shown.",
        "HELP",
        "    Print this help."};
    resp::AppendArrayHeader(out, std::size(lines));
    for (std::string_view line : lines) resp::AppendSimple(out, line);
  } else {
    resp::AppendError(out,
                      "ERR unknown subcommand '" + sub.substr(0, 128) + "'. Try COMMAND HELP.");
    return false;
  }
  return true;
}

}  // namespace switchyard
