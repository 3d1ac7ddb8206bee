#include "servers/common/resp_parser.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "servers/common/redis_int.h"

namespace switchyard {
namespace {

constexpr std::size_t kNotFound = std::string_view::npos;

// Redis finds line ends with strchr() on its NUL-terminated query buffer, so a NUL byte hides
// everything after it: such a line never ends, and only the "too big" limit closes the connection
// (Redis's "protocol desync" tests rely on that).
std::size_t FindLineEnd(std::string_view s, char terminator) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == terminator) return i;
    if (s[i] == '\0') break;
  }
  return kNotFound;
}

// C isspace() in the C locale, which sdssplitargs() uses to skip blanks and to check what follows
// a closing quote (but not to end a bare token; see SplitArgs).
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte a backslash escape in double quotes stands for.
char Unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// Redis's sdssplitargs(), kept close to the original so its quirks survive: a quote may open in
// the middle of a token (foo"bar baz" is one argument), a bare token ends only at space, \t, \r or
// \n (so \v and \f stay inside it), and a closing quote must be followed by a blank or the end.
// Returns false for unbalanced quotes.
bool SplitArgs(std::string_view line, std::vector<std::string>* args) {
  line = line.substr(0, line.find('\0'));  // the original works on a C string
  const std::size_t n = line.size();
  // '\0' past the end plays the C string terminator, as the original's *(p+1) checks expect.
  auto at = [&](std::size_t j) { return j < n ? line[j] : '\0'; };
  std::size_t i = 0;
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) return true;
    std::string arg;
    bool in_double = false;
    bool in_single = false;
    for (bool done = false; !done; i += (i < n)) {
      const char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && HexValue(at(i + 2)) >= 0 && HexValue(at(i + 3)) >= 0) {
          arg.push_back(static_cast<char>(HexValue(at(i + 2)) * 16 + HexValue(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          arg.push_back(Unescape(line[++i]));
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          arg.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          arg.push_back('\'');
          ++i;
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          arg.push_back(c);
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        arg.push_back(c);
      }
    }
    args->push_back(std::move(arg));
  }
}

}  // namespace

RespParser::RespParser(ParserLimits limits) : limits_(limits) {}

const std::string& RespParser::error() const {
  static const std::string none;
  return error_ != nullptr ? *error_ : none;
}

RespParser::Result RespParser::Parse(std::string_view input, std::size_t* consumed,
                                     std::vector<std::string>* args) {
  *consumed = 0;
  args->clear();
  if (error_ != nullptr) return Result::kError;
  // A command's arguments collect in *args; only one still partial at the end of a call is parked
  // in pending_, so a connection between requests holds no argument storage of its own.
  if (args_left_ > 0) *args = std::exchange(pending_, {});
  while (true) {
    const std::string_view rest = input.substr(*consumed);
    if (args_left_ == 0 && rest.empty()) return Result::kNeedMore;
    // Like Redis, the first byte of a request decides its type; a multibulk request in progress
    // stays one.
    const Result result = args_left_ == 0 && rest[0] != '*' ? ParseInline(rest, consumed, args)
                                                            : ParseMultibulk(rest, consumed, args);
    if (result == Result::kNeedMore && args_left_ > 0) pending_ = std::exchange(*args, {});
    // An empty request is dropped and parsing goes on, as Redis's processInputBuffer() does.
    if (result != Result::kCommand || !args->empty()) return result;
  }
}

RespParser::Result RespParser::ParseInline(std::string_view input, std::size_t* consumed,
                                           std::vector<std::string>* args) {
  const std::size_t newline = FindLineEnd(input, '\n');
  if (newline == kNotFound) {
    // Only an unterminated line is limited: a longer line that arrived whole is accepted.
    if (input.size() > limits_.max_inline_bytes) {
      return Fail("Protocol error: too big inline request");
    }
    return Result::kNeedMore;
  }
  std::size_t length = newline;
  if (length > 0 && input[length - 1] == '\r') --length;
  if (!SplitArgs(input.substr(0, length), args)) {
    args->clear();
    return Fail("Protocol error: unbalanced quotes in request");
  }
  *consumed += newline + 1;
  return Result::kCommand;
}

RespParser::Result RespParser::ParseMultibulk(std::string_view input, std::size_t* consumed,
                                              std::vector<std::string>* args) {
  auto take = [&](std::size_t n) {
    input.remove_prefix(n);
    *consumed += n;
  };
  // Count and length lines end at '\r'; Redis then skips one more byte without checking that it
  // is '\n', but waits for it to arrive.
  if (args_left_ == 0) {
    const std::size_t cr = FindLineEnd(input, '\r');
    if (cr == kNotFound) {
      if (input.size() > limits_.max_inline_bytes) {
        return Fail("Protocol error: too big mbulk count string");
      }
      return Result::kNeedMore;
    }
    if (cr + 2 > input.size()) return Result::kNeedMore;
    std::int64_t count;
    if (!ParseRedisInt64(input.substr(1, cr - 1), &count) || count > INT_MAX) {
      return Fail("Protocol error: invalid multibulk length");
    }
    take(cr + 2);
    if (count <= 0) return Result::kCommand;  // empty request
    args_left_ = static_cast<std::size_t>(count);
    // The count is the client's word only: grow with the arguments that actually arrive.
    args->reserve(std::min<std::size_t>(args_left_, 1024));
  }
  while (args_left_ > 0) {
    if (!bulk_len_) {
      const std::size_t cr = FindLineEnd(input, '\r');
      if (cr == kNotFound) {
        if (input.size() > limits_.max_inline_bytes) {
          return Fail("Protocol error: too big bulk count string");
        }
        return Result::kNeedMore;
      }
      if (cr + 2 > input.size()) return Result::kNeedMore;
      if (input[0] != '$') {
        // Redis's addReplyErrorFormat() turns CR and LF into spaces to keep the reply one line.
        // The byte cannot be NUL: FindLineEnd() would not have found the '\r'.
        const char got = input[0] == '\r' || input[0] == '\n' ? ' ' : input[0];
        return Fail(std::string("Protocol error: expected '$', got '") + got + "'");
      }
      std::int64_t len;
      if (!ParseRedisInt64(input.substr(1, cr - 1), &len) || len < 0 ||
          static_cast<std::uint64_t>(len) > limits_.max_bulk_bytes) {
        return Fail("Protocol error: invalid bulk length");
      }
      take(cr + 2);
      bulk_len_ = static_cast<std::size_t>(len);
    }
    // The argument stays in the caller's buffer until all of it and its CRLF (skipped unchecked,
    // like Redis) are there, so a large value is copied once.
    if (input.size() < *bulk_len_ + 2) return Result::kNeedMore;
    args->emplace_back(input.substr(0, *bulk_len_));
    buffered_bytes_ += *bulk_len_;
    take(*bulk_len_ + 2);
    bulk_len_.reset();
    --args_left_;
  }
  buffered_bytes_ = 0;
  return Result::kCommand;
}

RespParser::Result RespParser::Fail(std::string message) {
  error_ = std::make_unique<std::string>("ERR " + std::move(message));
  args_left_ = 0;
  bulk_len_.reset();
  pending_ = {};  // a dead connection need not keep the partial command
  buffered_bytes_ = 0;
  return Result::kError;
}

}  // namespace switchyard
