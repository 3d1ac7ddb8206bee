// libFuzzer target for the RESP parser. The first byte picks a fragment size; the rest is fed to
// one parser whole and to another in fragments of that size, as a socket would deliver it. Besides
// crashes and sanitizer reports, it checks that fragmentation never changes the commands parsed:
// the two sequences agree up to the first protocol error (a fragmented stream may hit the
// unterminated-line limit earlier, so only the common prefix must match).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "servers/common/resp_parser.h"

namespace {

using switchyard::ParserLimits;
using switchyard::RespParser;

struct Parsed {
  std::vector<std::vector<std::string>> commands;
  bool failed = false;
};

// Feeds `input` in pieces of `fragment` bytes, keeping unconsumed bytes as the Session does.
Parsed ParseInFragments(std::string_view input, std::size_t fragment) {
  RespParser parser(ParserLimits{/*max_bulk_bytes=*/1024, /*max_inline_bytes=*/256});
  Parsed parsed;
  std::string buffer;
  std::vector<std::string> args;
  for (std::size_t offset = 0; offset < input.size() && !parsed.failed; offset += fragment) {
    buffer.append(input.substr(offset, fragment));
    for (;;) {
      std::size_t consumed = 0;
      const auto result = parser.Parse(buffer, &consumed, &args);
      if (consumed > buffer.size()) std::abort();
      buffer.erase(0, consumed);
      if (result == RespParser::Result::kError) {
        if (parser.error().rfind("ERR Protocol error: ", 0) != 0) std::abort();
        parsed.failed = true;
        break;
      }
      if (result == RespParser::Result::kNeedMore) break;
      if (args.empty()) std::abort();  // empty requests are skipped, never returned
      parsed.commands.push_back(args);
    }
  }
  return parsed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t fragment = 1 + data[0] % 16;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Parsed whole = ParseInFragments(input, input.size() + 1);
  const Parsed pieces = ParseInFragments(input, fragment);
  const std::size_t common = std::min(whole.commands.size(), pieces.commands.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (whole.commands[i] != pieces.commands[i]) std::abort();
  }
  if (!whole.failed && !pieces.failed && whole.commands.size() != pieces.commands.size())
    std::abort();
  return 0;
}
