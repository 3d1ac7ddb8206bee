#include "loadgen/resp_reply.h"

#include <charconv>

namespace switchyard::loadgen {
namespace {

// Replies nest only as deep as the server makes them; deeper than this is not a reply we sent
// for, and the limit keeps a hostile stream from exhausting the stack.
constexpr int kMaxDepth = 16;

void AppendNumberLine(std::string& out, char type, std::size_t number) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, number).ptr;
  out.push_back(type);
  out.append(digits, end);
  out.append("\r\n", 2);
}

// Reads the line starting at `pos` (up to CRLF). Returns false when the CRLF has not arrived.
bool ReadLine(std::string_view input, std::size_t pos, std::string_view* line, std::size_t* next) {
  const std::size_t end = input.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  *line = input.substr(pos, end - pos);
  *next = end + 2;
  return true;
}

bool ToInteger(std::string_view text, long long* value) {
  if (text.empty()) return false;
  const auto [ptr, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && ptr == text.data() + text.size();
}

ReplyStatus ParseAt(std::string_view input, std::size_t* pos, bool* is_error, int depth) {
  if (*pos >= input.size()) return ReplyStatus::kNeedMore;
  if (depth > kMaxDepth) return ReplyStatus::kProtocolError;
  const char type = input[*pos];
  std::string_view line;
  std::size_t next = 0;
  if (!ReadLine(input, *pos + 1, &line, &next)) return ReplyStatus::kNeedMore;
  long long length = 0;
  switch (type) {
    case '+':
      *pos = next;
      return ReplyStatus::kComplete;
    case '-':
      *is_error = true;
      *pos = next;
      return ReplyStatus::kComplete;
    case ':':
      if (!ToInteger(line, &length)) return ReplyStatus::kProtocolError;
      *pos = next;
      return ReplyStatus::kComplete;
    case '$':
      if (!ToInteger(line, &length) || length < -1) return ReplyStatus::kProtocolError;
      if (length == -1) {  // nil
        *pos = next;
        return ReplyStatus::kComplete;
      }
      if (input.size() - next < static_cast<std::size_t>(length) + 2) return ReplyStatus::kNeedMore;
      if (input.substr(next + length, 2) != "\r\n") return ReplyStatus::kProtocolError;
      *pos = next + static_cast<std::size_t>(length) + 2;
      return ReplyStatus::kComplete;
    case '*':
      if (!ToInteger(line, &length) || length < -1) return ReplyStatus::kProtocolError;
      *pos = next;
      for (long long i = 0; i < length; ++i) {
        const ReplyStatus status = ParseAt(input, pos, is_error, depth + 1);
        if (status != ReplyStatus::kComplete) return status;
      }
      return ReplyStatus::kComplete;
    default:
      return ReplyStatus::kProtocolError;
  }
}

}  // namespace

void AppendCommand(std::string& out, std::initializer_list<std::string_view> args) {
  AppendNumberLine(out, '*', args.size());
  for (const std::string_view arg : args) {
    AppendNumberLine(out, '$', arg.size());
    out.append(arg);
    out.append("\r\n", 2);
  }
}

ReplyStatus ParseReply(std::string_view input, std::size_t* consumed, bool* is_error,
                       long long* array_length) {
  std::size_t pos = 0;
  bool error = false;
  const ReplyStatus status = ParseAt(input, &pos, &error, 0);
  *consumed = status == ReplyStatus::kComplete ? pos : 0;
  *is_error = status == ReplyStatus::kComplete && error;
  if (array_length != nullptr) {
    // A complete array's header line is whole, so this reads what ParseAt already checked.
    long long length = -1;
    if (status == ReplyStatus::kComplete && input[0] == '*') {
      ToInteger(input.substr(1, input.find("\r\n") - 1), &length);
    }
    *array_length = length < 0 ? -1 : length;
  }
  return status;
}

}  // namespace switchyard::loadgen
