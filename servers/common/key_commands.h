// The commands on keys (strings, counters, the keyspace): each reads or writes the shared store
// under its locks, so it is atomic across every connection of every process, with Redis 7.0's
// replies and errors. ExecuteCommand (commands.h) checks the arity and hands them here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "servers/common/commands.h"
#include "servers/common/server_context.h"

namespace switchyard {

// Runs `id` with `args` (arity already checked) and appends its reply to `out`. False, having
// done nothing, when `id` is not a command on keys.
bool ExecuteKeyCommand(CommandId id, ServerContext& context, std::vector<std::string>& args,
                       std::string* out);

// One error reply, counted as the client's mistake (a wrong argument, syntax, not a number).
void ClientError(Metrics& metrics, std::string_view message, std::string* out);

}  // namespace switchyard
