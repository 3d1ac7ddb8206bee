// libFuzzer target for the command layer: the input is parsed as a client's request stream and
// every command runs against a small shared store (so -OOM paths are reached). Each command must
// append exactly one well-formed RESP reply: hiredis's reader, a real client's parser, checks.
// SY.* commands are skipped: they sleep or burn CPU by design.
#include <hiredis/hiredis.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "servers/common/commands.h"
#include "servers/common/config.h"
#include "servers/common/metrics.h"
#include "servers/common/resp_parser.h"
#include "servers/common/store.h"

namespace {

using namespace switchyard;

struct World {
  ServerConfig config;
  std::unique_ptr<Store> store = Store::Create(1 << 20, 4);
  Metrics metrics{"fuzz", CommandLabels()};
  ServerContext context{config, *store, metrics};
};

bool IsSimulatedWork(const std::string& name) {
  return name.size() >= 3 && std::tolower(static_cast<unsigned char>(name[0])) == 's' &&
         std::tolower(static_cast<unsigned char>(name[1])) == 'y' && name[2] == '.';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;  // one store for the whole run, as a server has
  RespParser parser(ParserLimits{/*max_bulk_bytes=*/64 << 10, /*max_inline_bytes=*/4 << 10});
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  std::string out;
  std::size_t executed = 0;
  for (bool open = true; open;) {
    std::size_t consumed = 0;
    const auto result = parser.Parse(input, &consumed, &args);
    input.remove_prefix(consumed);
    if (result != RespParser::Result::kCommand) break;
    if (IsSimulatedWork(args[0])) continue;
    CommandId id = CommandId::kCount;
    const std::size_t before = out.size();
    const CommandOutcome outcome = ExecuteCommand(world->context, args, 1, &id, &out);
    if (id == CommandId::kCount) std::abort();  // every command is labelled for the metrics
    if (outcome.kind == CommandOutcome::Kind::kWait) std::abort();  // SY.WAIT was skipped
    open = outcome.kind != CommandOutcome::Kind::kClose;
    if (out.size() == before) {
      if (open) std::abort();  // only the cross-protocol close goes without a reply
    } else {
      ++executed;
    }
  }
  redisReader* reader = redisReaderCreate();
  if (redisReaderFeed(reader, out.data(), out.size()) != REDIS_OK) std::abort();
  std::size_t replies = 0;
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader, &reply) != REDIS_OK) std::abort();  // malformed RESP
    if (reply == nullptr) break;
    freeReplyObject(reply);
    ++replies;
  }
  redisReaderFree(reader);
  if (replies != executed) std::abort();
  return 0;
}
