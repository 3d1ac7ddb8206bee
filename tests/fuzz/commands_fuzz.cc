// libFuzzer target for the command layer: the input is parsed as a client's request stream and
// every command runs against a small shared store (so -OOM paths are reached). Each command must
// append exactly one well-formed RESP reply (hiredis's reader, a real client's parser, checks), of
// a shape the command can give (CheckShape). SY.* commands are skipped: they sleep or burn CPU by
// design. commands.dict gives libFuzzer the command names and options.
#include <hiredis/hiredis.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
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

// The reply's shape must be one the command can give (Redis's): an integer command answers an
// integer, MGET an array of as many bulks or nils as it was given keys, INCRBYFLOAT a number...
// Any of them may answer an error instead.
void CheckShape(CommandId id, std::size_t argc, const redisReply* reply) {
  const int type = reply->type;
  if (type == REDIS_REPLY_ERROR) return;
  const std::string_view text(reply->str != nullptr ? reply->str : "", reply->len);
  const auto require = [](bool ok) {
    if (!ok) std::abort();
  };
  switch (id) {
    case CommandId::kGet:
    case CommandId::kGetSet:
    case CommandId::kGetDel:
      require(type == REDIS_REPLY_STRING || type == REDIS_REPLY_NIL);
      break;
    case CommandId::kSet:
      require((type == REDIS_REPLY_STATUS && text == "OK") || type == REDIS_REPLY_NIL ||
              type == REDIS_REPLY_STRING);
      break;
    case CommandId::kIncr:
    case CommandId::kIncrBy:
    case CommandId::kDecr:
    case CommandId::kDecrBy:
      require(type == REDIS_REPLY_INTEGER);
      break;
    case CommandId::kAppend:
    case CommandId::kStrlen:
    case CommandId::kDbSize:
      require(type == REDIS_REPLY_INTEGER && reply->integer >= 0);
      break;
    case CommandId::kSetNx:
    case CommandId::kMSetNx:
      require(type == REDIS_REPLY_INTEGER && (reply->integer == 0 || reply->integer == 1));
      break;
    case CommandId::kDel:
    case CommandId::kUnlink:
    case CommandId::kExists:
      require(type == REDIS_REPLY_INTEGER && reply->integer >= 0 &&
              static_cast<std::size_t>(reply->integer) <= argc - 1);
      break;
    case CommandId::kIncrByFloat: {
      require(type == REDIS_REPLY_STRING && !text.empty());
      const std::string number(text);
      char* end = nullptr;
      std::strtold(number.c_str(), &end);
      require(*end == '\0');  // a number that INCRBYFLOAT itself reads back
      break;
    }
    case CommandId::kMGet:
      require(type == REDIS_REPLY_ARRAY && reply->elements == argc - 1);
      for (std::size_t i = 0; i < reply->elements; ++i) {
        require(reply->element[i]->type == REDIS_REPLY_STRING ||
                reply->element[i]->type == REDIS_REPLY_NIL);
      }
      break;
    case CommandId::kMSet:
    case CommandId::kFlushDb:
    case CommandId::kFlushAll:
    case CommandId::kSelect:
      require(type == REDIS_REPLY_STATUS && text == "OK");
      break;
    case CommandId::kType:
      require(type == REDIS_REPLY_STATUS && (text == "string" || text == "none"));
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;  // one store for the whole run, as a server has
  RespParser parser(ParserLimits{/*max_bulk_bytes=*/64 << 10, /*max_inline_bytes=*/4 << 10});
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  std::string out;
  ConnectionState connection{1, {}};
  for (bool open = true; open;) {
    std::size_t consumed = 0;
    const auto result = parser.Parse(input, &consumed, &args);
    input.remove_prefix(consumed);
    if (result != RespParser::Result::kCommand) break;
    if (IsSimulatedWork(args[0])) continue;
    CommandId id = CommandId::kCount;
    const std::size_t argc = args.size();
    out.clear();
    const CommandOutcome outcome = ExecuteCommand(world->context, args, connection, &id, &out);
    if (id == CommandId::kCount) std::abort();  // every command is labelled for the metrics
    if (outcome.kind == CommandOutcome::Kind::kWait) std::abort();  // SY.WAIT was skipped
    open = outcome.kind != CommandOutcome::Kind::kClose;
    if (out.empty()) {
      if (open) std::abort();  // only the cross-protocol close goes without a reply
      continue;
    }
    // Exactly one well-formed reply, read by a real client's parser.
    redisReader* reader = redisReaderCreate();
    if (redisReaderFeed(reader, out.data(), out.size()) != REDIS_OK) std::abort();
    void* reply = nullptr;
    if (redisReaderGetReply(reader, &reply) != REDIS_OK || reply == nullptr) std::abort();
    CheckShape(id, argc, static_cast<const redisReply*>(reply));
    freeReplyObject(reply);
    void* extra = nullptr;
    if (redisReaderGetReply(reader, &extra) != REDIS_OK || extra != nullptr) std::abort();
    redisReaderFree(reader);
  }
  return 0;
}
