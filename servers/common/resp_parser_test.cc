#include "servers/common/resp_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace switchyard {
namespace {

using namespace std::string_literals;  // "...\0..."s keeps embedded NULs
using Result = RespParser::Result;
using Args = std::vector<std::string>;

std::string Encode(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args)
    out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

// What a connection sees when `chunks` arrive one after another: it appends each to its buffer,
// parses until nothing more is complete, and drops what the parser consumed.
struct Outcome {
  std::vector<Args> commands;
  Result last = Result::kNeedMore;
  std::string error;
  std::size_t left = 0;  // bytes still in the caller's buffer at the end
};

Outcome Feed(const std::vector<std::string>& chunks, ParserLimits limits = {}) {
  RespParser parser(limits);
  Outcome out;
  std::string buffer;
  for (const std::string& chunk : chunks) {
    buffer += chunk;
    Args args;
    std::size_t consumed = 0;
    while ((out.last = parser.Parse(buffer, &consumed, &args)) == Result::kCommand) {
      EXPECT_LE(consumed, buffer.size());
      buffer.erase(0, consumed);
      out.commands.push_back(args);
    }
    EXPECT_LE(consumed, buffer.size());
    buffer.erase(0, consumed);
    if (out.last == Result::kError) break;
  }
  out.error = parser.error();
  out.left = buffer.size();
  return out;
}

// The input whole, byte by byte, and cut in two at every position.
std::vector<std::vector<std::string>> Deliveries(const std::string& input) {
  std::vector<std::vector<std::string>> result = {{input}, {}};
  for (char c : input) result[1].push_back(std::string(1, c));
  for (std::size_t i = 0; i <= input.size(); ++i) {
    result.push_back({input.substr(0, i), input.substr(i)});
  }
  return result;
}

void ExpectCommands(const std::string& input, const std::vector<Args>& expected) {
  for (const auto& chunks : Deliveries(input)) {
    const Outcome out = Feed(chunks);
    ASSERT_EQ(out.last, Result::kNeedMore) << out.error << " in " << chunks.size() << " chunks";
    EXPECT_EQ(out.commands, expected) << "in " << chunks.size() << " chunks";
    EXPECT_EQ(out.left, 0u);
  }
}

void ExpectError(const std::string& input, const std::string& error, ParserLimits limits = {}) {
  for (const auto& chunks : Deliveries(input)) {
    const Outcome out = Feed(chunks, limits);
    ASSERT_EQ(out.last, Result::kError) << "in " << chunks.size() << " chunks";
    EXPECT_EQ(out.error, "ERR " + error) << "in " << chunks.size() << " chunks";
  }
}

class RespParserTest : public testing::Test {
 protected:
  Result Parse(std::string_view input) { return parser_.Parse(input, &consumed_, &args_); }

  RespParser parser_;
  std::size_t consumed_ = 0;
  Args args_;
};

TEST_F(RespParserTest, InlinePing) {
  EXPECT_EQ(Parse("PING"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  EXPECT_EQ(Parse("PING\r\n"), Result::kCommand);
  EXPECT_EQ(consumed_, 6u);
  EXPECT_EQ(args_, Args{"PING"});
  EXPECT_EQ(Parse(""), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  EXPECT_TRUE(args_.empty());
}

TEST_F(RespParserTest, InlineWithLfOnly) {
  EXPECT_EQ(Parse("set a  b\nGET"), Result::kCommand);
  EXPECT_EQ(consumed_, 9u);
  EXPECT_EQ(args_, (Args{"set", "a", "b"}));
  // Only the last '\r' belongs to the line end; another one is just a blank.
  EXPECT_EQ(Parse("ECHO x\r\r\n"), Result::kCommand);
  EXPECT_EQ(consumed_, 9u);
  EXPECT_EQ(args_, (Args{"ECHO", "x"}));
  ExpectCommands("PING\r\nECHO  hi\n", {{"PING"}, {"ECHO", "hi"}});
}

TEST_F(RespParserTest, InlineQuotes) {
  const std::vector<std::pair<std::string, Args>> cases = {
      {R"(SET "a b" c)", {"SET", "a b", "c"}},
      {R"("\x41\x7a\n\r\t\b\a\\\"\q")", {"Az\n\r\t\b\a\\\"q"}},
      {R"("\xZZ" "\x4")", {"xZZ", "x4"}},  // not two hex digits: "\x" is just 'x'
      {R"('it\'s' 'a\nb' 'c\d')", {"it's", R"(a\nb)", R"(c\d)"}},
      {R"(foo"bar baz" x'y')", {"foobar baz", "xy"}},  // a quote may open mid-token
      {R"("" '')", {"", ""}},
      {"\"a\"\t'b'", {"a", "b"}},
      {"\v\fa\vb", {"a\vb"}},  // \v and \f are skipped as blanks but do not end a bare token
      {"\xff\xfe \x80", {"\xff\xfe", "\x80"}},
  };
  for (const auto& [line, expected] : cases) {
    ASSERT_EQ(Parse(line + "\r\n"), Result::kCommand) << line;
    EXPECT_EQ(consumed_, line.size() + 2) << line;
    EXPECT_EQ(args_, expected) << line;
  }
  ExpectCommands("SET \"a\\x00b\" 'c d'\r\n", {{"SET", "a\0b"s, "c d"}});
}

TEST(RespParser, UnbalancedQuotes) {
  for (const std::string line : {R"("foo)", R"('foo)", R"("foo"bar)", R"('a'b)", R"(x "foo\")",
                                 R"('foo\')", R"(GET "a"'b')"}) {
    ExpectError(line + "\r\n", "Protocol error: unbalanced quotes in request");
  }
}

TEST(RespParser, MultibulkBinary) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const Args set = {"SET", "k\r\ney", all_bytes};
  const Args odd = {"\0"s, "\r\n", "", "$1\r\n*"};
  ExpectCommands(Encode(set) + Encode(odd), {set, odd});
}

TEST_F(RespParserTest, MultibulkConsumesEachCompletePart) {
  // Count line, then a whole argument, then a length line: each is taken as soon as it is whole.
  EXPECT_EQ(Parse("*2\r"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  EXPECT_EQ(Parse("*2\r\n$3\r\nGE"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 8u);
  EXPECT_EQ(Parse("GET\r\n$1\r\nk"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 9u);
  EXPECT_EQ(Parse("k\r"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  EXPECT_EQ(Parse("k\r\n*1"), Result::kCommand);
  EXPECT_EQ(consumed_, 3u);
  EXPECT_EQ(args_, (Args{"GET", "k"}));
}

TEST_F(RespParserTest, Pipelined) {
  const std::string a = Encode({"SET", "k", "v"}), b = "ECHO x\r\n", c = Encode({"GET", "k"});
  std::string buffer = a + b + c;
  for (const auto& [request, expected] : std::vector<std::pair<std::string, Args>>{
           {a, {"SET", "k", "v"}}, {b, {"ECHO", "x"}}, {c, {"GET", "k"}}}) {
    ASSERT_EQ(Parse(buffer), Result::kCommand);
    EXPECT_EQ(consumed_, request.size());
    EXPECT_EQ(args_, expected);
    buffer.erase(0, consumed_);
  }
  EXPECT_EQ(Parse(buffer), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  ExpectCommands(a + b + c, {{"SET", "k", "v"}, {"ECHO", "x"}, {"GET", "k"}});
}

TEST_F(RespParserTest, EmptyRequestsAreSkipped) {
  const std::string empties = "\r\n\n  \t\r\n*0\r\n*-10\r\n*-9223372036854775808\r\n";
  EXPECT_EQ(Parse(empties + "PING\r\n*0\r\n"), Result::kCommand);
  EXPECT_EQ(consumed_, empties.size() + 6);
  EXPECT_EQ(args_, Args{"PING"});
  EXPECT_EQ(Parse(empties), Result::kNeedMore);
  EXPECT_EQ(consumed_, empties.size());
  ExpectCommands(empties + "PING\r\n" + empties, {{"PING"}});
}

TEST(RespParser, ErrorTexts) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"*abc\r\n", "invalid multibulk length"},
      {"*\r\n", "invalid multibulk length"},
      {"*+1\r\n", "invalid multibulk length"},
      {"*01\r\n", "invalid multibulk length"},
      {"*-0\r\n", "invalid multibulk length"},
      {"* 1\r\n", "invalid multibulk length"},
      {"*1 \r\n", "invalid multibulk length"},
      {"*2147483648\r\n", "invalid multibulk length"},
      {"*9223372036854775808\r\n", "invalid multibulk length"},
      {"*-9223372036854775809\r\n", "invalid multibulk length"},
      {"*100000000000000000000\r\n", "invalid multibulk length"},
      {"*1\r\nfoo\r\n", "expected '$', got 'f'"},
      {"*1\r\n:1\r\n", "expected '$', got ':'"},
      {"*1\r\n*1\r\n", "expected '$', got '*'"},
      {"*1\r\n\xff\r\n", "expected '$', got '\xff'"},
      // Redis's addReplyErrorFormat() turns CR and LF into spaces.
      {"*1\r\n\r\n", "expected '$', got ' '"},
      {"*1\r\n\n\r\n", "expected '$', got ' '"},
      {"*1\r\n$-1\r\n", "invalid bulk length"},
      {"*1\r\n$\r\n", "invalid bulk length"},
      {"*1\r\n$+1\r\n", "invalid bulk length"},
      {"*1\r\n$01\r\n", "invalid bulk length"},
      {"*1\r\n$1x\r\n", "invalid bulk length"},
      {"*1\r\n$ 1\r\n", "invalid bulk length"},
      {"*1\r\n$536870913\r\n", "invalid bulk length"},  // proto-max-bulk-len + 1
      {"*2\r\n$1\r\na\r\n$x\r\n", "invalid bulk length"},
      {"\"unterminated\r\n", "unbalanced quotes in request"},
  };
  for (const auto& [input, error] : cases) ExpectError(input, "Protocol error: " + error);
}

TEST_F(RespParserTest, LargestCountsAreAccepted) {
  // INT_MAX is allowed, and the count is never trusted for allocation.
  EXPECT_EQ(Parse("*2147483647\r\n$1\r\na\r\n"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 20u);
  EXPECT_EQ(parser_.buffered_bytes(), 1u);
  ExpectCommands("*1\r\n$536870912\r\n", {});  // exactly proto-max-bulk-len
}

TEST(RespParser, BulkLengthOverCustomLimit) {
  const ParserLimits limits{.max_bulk_bytes = 10};
  const Outcome ok = Feed({"*1\r\n$10\r\n0123456789\r\n"}, limits);
  EXPECT_EQ(ok.commands, std::vector<Args>{{"0123456789"}});
  ExpectError("*1\r\n$11\r\n", "Protocol error: invalid bulk length", limits);
}

TEST_F(RespParserTest, ErrorIsFinal) {
  EXPECT_EQ(Parse("*1\r\n$x\r\n"), Result::kError);
  const std::string error = parser_.error();
  EXPECT_EQ(error, "ERR Protocol error: invalid bulk length");
  for (std::string_view more : {"PING\r\n", "", "*1\r\n$1\r\na\r\n"}) {
    args_ = {"stale"};
    EXPECT_EQ(Parse(more), Result::kError);
    EXPECT_EQ(consumed_, 0u);
    EXPECT_TRUE(args_.empty());
    EXPECT_EQ(parser_.error(), error);
    EXPECT_EQ(parser_.buffered_bytes(), 0u);
  }
}

// An unterminated line or length line may grow to max_inline_bytes (64 KiB) and no further.
TEST(RespParser, TooBigLines) {
  const std::string junk(64 << 10, 'A');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "too big inline request"},
      {"*", "too big mbulk count string"},
      {"*1\r\n", "too big bulk count string"},
      {"*2\r\n$1\r\na\r\n$", "too big bulk count string"},
  };
  for (const auto& [prefix, error] : cases) {
    RespParser parser;
    std::size_t consumed = 0;
    Args args;
    std::string buffer = prefix;
    ASSERT_EQ(parser.Parse(buffer, &consumed, &args), Result::kNeedMore);
    buffer.erase(0, consumed);
    buffer.append(junk, 0, junk.size() - buffer.size());
    EXPECT_EQ(parser.Parse(buffer, &consumed, &args), Result::kNeedMore) << prefix;
    buffer.erase(0, consumed);
    ASSERT_EQ(buffer.size(), 64u << 10);
    buffer += "A";
    EXPECT_EQ(parser.Parse(buffer, &consumed, &args), Result::kError) << prefix;
    EXPECT_EQ(parser.error(), "ERR Protocol error: " + error);
  }
}

TEST_F(RespParserTest, LongLineThatArrivesWholeIsAccepted) {
  // Redis only limits a line it has not seen the end of.
  const std::string value(100000, 'v');
  EXPECT_EQ(Parse("SET k " + value + "\r\n"), Result::kCommand);
  EXPECT_EQ(args_, (Args{"SET", "k", value}));
  EXPECT_EQ(Parse("*1\r\n$" + std::string(70000, '1') + "\r\n"), Result::kError);
  EXPECT_EQ(parser_.error(), "ERR Protocol error: invalid bulk length");
}

// Redis's "Protocol desync regression test": after a NUL, endless data (with line ends, which the
// NUL hides just as Redis's strchr() does) must close the connection once it passes 64 KiB.
TEST(RespParser, ProtocolDesync) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\0"s, "too big inline request"},
      {"*\0"s, "too big mbulk count string"},
      {"*1\r\n$\0"s, "too big bulk count string"},
  };
  const std::string payload = std::string(1024, 'A') + "\r\n";
  for (const auto& [prefix, error] : cases) {
    RespParser parser;
    std::size_t consumed = 0;
    Args args;
    std::string buffer = prefix;
    Result result;
    while ((result = parser.Parse(buffer, &consumed, &args)) == Result::kNeedMore) {
      buffer.erase(0, consumed);
      ASSERT_LE(buffer.size(), 64u << 10);
      buffer += payload;
    }
    ASSERT_EQ(result, Result::kError);
    EXPECT_GT(buffer.size(), 64u << 10);
    EXPECT_EQ(parser.error(), "ERR Protocol error: " + error);
  }
}

TEST_F(RespParserTest, NulHidesLineEnd) {
  EXPECT_EQ(Parse("PING\0\r\n"s), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  EXPECT_EQ(Parse("*1\r\n$1\0\r\na\r\n"s), Result::kNeedMore);
  EXPECT_EQ(consumed_, 4u);
}

TEST(RespParser, LineEndsAreSkippedUnchecked) {
  // Redis requires a byte after each '\r' and after each argument, but never looks at them.
  ExpectCommands("*2\rX$1\rXaYZ$2\r\nbc\r\n", {{"a", "bc"}});
}

TEST_F(RespParserTest, BufferedBytes) {
  EXPECT_EQ(Parse("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva"), Result::kNeedMore);
  EXPECT_EQ(consumed_, 26u);
  EXPECT_EQ(parser_.buffered_bytes(), 6u);
  EXPECT_EQ(Parse("va"), Result::kNeedMore);
  EXPECT_EQ(parser_.buffered_bytes(), 6u);
  EXPECT_EQ(Parse("value\r\n"), Result::kCommand);
  EXPECT_EQ(args_, (Args{"SET", "key", "value"}));
  EXPECT_EQ(parser_.buffered_bytes(), 0u);
}

TEST_F(RespParserTest, HugeBulkInFragments) {
  std::string value(1 << 20, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + i / 4096);
  const std::string header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n";
  EXPECT_EQ(Parse(header), Result::kNeedMore);
  EXPECT_EQ(consumed_, header.size());
  std::string buffer;
  for (std::size_t offset = 0; offset < value.size(); offset += 4096) {
    buffer.append(value, offset, 4096);
    // Not consumed and not copied: the parser holds only "SET" and "k" until the value is whole.
    ASSERT_EQ(Parse(buffer), Result::kNeedMore);
    ASSERT_EQ(consumed_, 0u);
    ASSERT_EQ(parser_.buffered_bytes(), 4u);
  }
  buffer += "\r";
  EXPECT_EQ(Parse(buffer), Result::kNeedMore);
  EXPECT_EQ(consumed_, 0u);
  buffer += "\n";
  ASSERT_EQ(Parse(buffer), Result::kCommand);
  EXPECT_EQ(consumed_, buffer.size());
  ASSERT_EQ(args_.size(), 3u);
  EXPECT_TRUE(args_[2] == value);
  EXPECT_EQ(parser_.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace switchyard
