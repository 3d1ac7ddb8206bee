// What each command is: its name, arity and keys for dispatch, and the description clients read
// back with COMMAND, COMMAND INFO and COMMAND DOCS (redis-cli builds its hints from DOCS; cluster
// clients find keys from INFO). Only the commands we serve are listed, with only the options we
// serve, so a client never learns of a feature that is not there.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "servers/common/commands.h"

namespace switchyard {

// One argument as COMMAND DOCS describes it (Redis 7's argument model): a key, a string, an
// integer or double, a token alone, a choice of several (oneof), or a group (block).
struct ArgumentDoc {
  std::string_view name;
  std::string_view type;  // key, string, integer, double, pure-token, oneof, block
  std::string_view token = {};
  bool optional = false;
  bool multiple = false;
  std::vector<ArgumentDoc> arguments = {};
};

struct CommandSpec {
  std::string_view name;  // lower case, as Redis prints it in errors
  CommandId id;
  int arity;  // Redis convention: N means exactly N arguments, -N at least N
  std::vector<std::string_view> flags;            // write, readonly, denyoom, fast, ...
  int first_key = 0, last_key = 0, key_step = 0;  // Redis's legacy key positions
  std::string_view group;                         // string, generic, connection, server
  std::string_view summary;
  std::string_view since;  // the Redis version that introduced it
  std::string_view complexity;
  std::vector<ArgumentDoc> arguments = {};
};

// Every command, in CommandId order.
const std::vector<CommandSpec>& CommandTable();

// ASCII case-insensitive equality, for command names and options.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The command named `name` (any case), or null.
const CommandSpec* FindCommand(std::string_view name);

// COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, HELP): appends the reply to `out`.
// Returns false, having appended an error, when the arguments were wrong.
bool CommandCommand(const std::vector<std::string>& args, std::string* out);

}  // namespace switchyard
