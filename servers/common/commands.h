// The commands (DESIGN.md, "The service"; what each one is: command_table.h) and their execution
// against the shared store.
// Model-agnostic: a command never waits here; SY.WAIT is handed back to the model, which waits
// its own way (a timer for coroutines and fibers, a sleep for threads and processes).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "servers/common/server_context.h"

namespace switchyard {

enum class CommandId : std::uint8_t {
  kPing,
  kEcho,
  kGet,
  kSet,
  kDel,
  kIncr,
  kQuit,
  kCommand,
  kConfig,
  kClient,
  kHello,
  kSelect,
  kInfo,
  kSyCpu,    // burn CPU on the unit serving the request
  kSyWait,   // wait the model's natural way (a downstream call)
  kSyBlock,  // a real blocking system call, whatever the model
  kIncrBy,
  kDecr,
  kDecrBy,
  kIncrByFloat,
  kAppend,
  kStrlen,
  kSetNx,
  kGetSet,
  kGetDel,
  kMGet,
  kMSet,
  kMSetNx,
  kExists,
  kUnlink,
  kType,
  kDbSize,
  kFlushDb,
  kFlushAll,
  kUnknown,
  kCount,
};

// Label values for metrics, indexed by CommandId.
const std::vector<std::string>& CommandLabels();

// Longest SY.CPU / SY.WAIT / SY.BLOCK accepted, so a typo cannot park a connection for hours.
inline constexpr std::int64_t kMaxSimulatedMicros = 60'000'000;

// What the store's answers mean to a client, in the same words for RESP and gRPC: Redis's for INCR
// and a full store; the damaged allocator has no Redis counterpart (Redis has no shared allocator
// a killed process could leave half-updated; see store_shard.cc).
inline constexpr char kNotIntegerError[] = "ERR value is not an integer or out of range";
inline constexpr char kOverflowError[] = "ERR increment or decrement would overflow";
inline constexpr char kNotFloatError[] = "ERR value is not a valid float";
inline constexpr char kOomError[] = "OOM command not allowed when used memory > 'store-bytes'.";
inline constexpr char kAllocatorDamagedError[] =
    "ERR store allocator may be damaged (a process died inside it): writes that need new memory "
    "are refused until the server restarts";

struct CommandOutcome {
  enum class Kind { kReplied, kClose, kWait };
  Kind kind = Kind::kReplied;
  std::chrono::microseconds wait{0};  // kWait: how long; the model then calls FinishWait
};

// What a connection's own commands read or change about it: CLIENT ID, CLIENT SETNAME/GETNAME.
struct ConnectionState {
  std::uint64_t id = 0;
  // CLIENT SETNAME's; null: none. A pointer, as few clients name themselves: 8 bytes a connection
  // rather than a string's 32.
  std::unique_ptr<std::string> name;
};

// Runs one parsed command and appends its reply to `out`. `args` is consumed (its strings may be
// moved from).
CommandOutcome ExecuteCommand(ServerContext& context, std::vector<std::string>& args,
                              ConnectionState& connection, CommandId* id, std::string* out);

// A test hook for the path no well-formed request takes: with SWITCHYARD_TEST_FAIL_ECHO=<text> in
// the server's environment, an echo of exactly <text> (ECHO in RESP, Echo in gRPC) throws
// std::runtime_error, as running out of memory mid-request would, so the tests can see that one
// connection's failure closes that connection alone (open_connections.h). No effect otherwise.
void FailEchoForTest(std::string_view message);

// Burns `micros` of this thread's CPU time (SY.CPU); exported for the switch-cost benchmarks.
void BurnCpu(std::chrono::microseconds micros);

}  // namespace switchyard
