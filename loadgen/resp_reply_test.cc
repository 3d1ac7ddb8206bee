#include "loadgen/resp_reply.h"

#include <gtest/gtest.h>

namespace switchyard::loadgen {
namespace {

TEST(RespReplyTest, WritesMultibulkRequests) {
  std::string out;
  AppendCommand(out, {"SET", "key", std::string_view("a\0b", 3)});
  EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\na\0b\r\n", 31));
  AppendCommand(out, {"PING"});
  EXPECT_EQ(out.substr(31), "*1\r\n$4\r\nPING\r\n");
}

// Every kind of reply, fed one byte at a time: kNeedMore until its last byte, then kComplete
// with exactly its length consumed.
TEST(RespReplyTest, RecognisesEachReplyOnlyWhenComplete) {
  const struct {
    std::string bytes;
    bool is_error;
  } cases[] = {
      {"+OK\r\n", false},
      {"-ERR unknown command 'FOO'\r\n", true},
      {":12345\r\n", false},
      {":-1\r\n", false},
      {"$5\r\nhello\r\n", false},
      {"$0\r\n\r\n", false},
      {"$-1\r\n", false},
      {std::string("$4\r\n\r\n\0x\r\n", 10), false},  // a body holding CRLF and NUL
      {"*0\r\n", false},
      {"*-1\r\n", false},
      {"*2\r\n$3\r\nfoo\r\n:1\r\n", false},
      {"*2\r\n*1\r\n+a\r\n-ERR nested\r\n", true},
  };
  for (const auto& reply : cases) {
    const std::string stream = reply.bytes + "+NEXT\r\n";
    for (std::size_t length = 0; length < reply.bytes.size(); ++length) {
      std::size_t consumed = 99;
      bool is_error = false;
      ASSERT_EQ(ParseReply(std::string_view(stream.data(), length), &consumed, &is_error),
                ReplyStatus::kNeedMore)
          << reply.bytes << " cut at " << length;
      ASSERT_EQ(consumed, 0u);
    }
    for (std::size_t length = reply.bytes.size(); length <= stream.size(); ++length) {
      std::size_t consumed = 0;
      bool is_error = !reply.is_error;
      ASSERT_EQ(ParseReply(std::string_view(stream.data(), length), &consumed, &is_error),
                ReplyStatus::kComplete)
          << reply.bytes;
      EXPECT_EQ(consumed, reply.bytes.size()) << reply.bytes;
      EXPECT_EQ(is_error, reply.is_error) << reply.bytes;
    }
  }
}

// A pipelined stream split at every possible point: the caller's loop (keep what is not consumed,
// append the next fragment) sees every reply exactly once, in order.
TEST(RespReplyTest, PipelinedStreamInFragments) {
  const std::string stream = "+OK\r\n$3\r\nbar\r\n-ERR x\r\n:7\r\n$-1\r\n*1\r\n$1\r\nz\r\n";
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    std::string buffer;
    std::vector<bool> errors;
    for (const std::string_view fragment :
         {std::string_view(stream).substr(0, split), std::string_view(stream).substr(split)}) {
      buffer.append(fragment);
      while (true) {
        std::size_t consumed = 0;
        bool is_error = false;
        const ReplyStatus status = ParseReply(buffer, &consumed, &is_error);
        if (status == ReplyStatus::kNeedMore) break;
        ASSERT_EQ(status, ReplyStatus::kComplete);
        errors.push_back(is_error);
        buffer.erase(0, consumed);
      }
    }
    EXPECT_EQ(errors, (std::vector<bool>{false, false, true, false, false, false})) << split;
    EXPECT_TRUE(buffer.empty());
  }
}

// What an MGET's reply is checked by: the top-level array's length, -1 for anything else.
TEST(RespReplyTest, SaysTheLengthOfATopLevelArray) {
  const std::pair<std::string_view, long long> cases[] = {
      {"*3\r\n$1\r\na\r\n$-1\r\n$12\r\nhello\r\nworld\r\n", 3},
      {"*1\r\n*2\r\n:1\r\n:2\r\n", 1},  // the outer array's, not the nested one's
      {"*0\r\n", 0},
      {"*-1\r\n", -1},
      {"$-1\r\n", -1},
      {"$3\r\n*12\r\n", -1},
      {"+OK\r\n", -1},
      {":4\r\n", -1},
      {"-ERR wrong number of arguments for 'mget' command\r\n", -1},
  };
  for (const auto& [reply, expected] : cases) {
    std::size_t consumed = 0;
    bool is_error = false;
    long long length = 99;
    ASSERT_EQ(ParseReply(reply, &consumed, &is_error, &length), ReplyStatus::kComplete) << reply;
    EXPECT_EQ(length, expected) << reply;
  }
  std::size_t consumed = 0;
  bool is_error = false;
  long long length = 99;
  EXPECT_EQ(ParseReply("*2\r\n$1\r\na\r\n", &consumed, &is_error, &length), ReplyStatus::kNeedMore);
  EXPECT_EQ(length, -1) << "an incomplete reply has no length yet";
}

TEST(RespReplyTest, RejectsWhatIsNotRespReplies) {
  for (const std::string_view bad :
       {"hello\r\n", "$abc\r\n", "$-2\r\n", "$3\r\nabcde\r\n", ":1x\r\n", "*x\r\n"}) {
    std::size_t consumed = 0;
    bool is_error = false;
    EXPECT_EQ(ParseReply(bad, &consumed, &is_error), ReplyStatus::kProtocolError) << bad;
  }
  // Nesting deeper than any reply we send for is refused rather than recursed into.
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += "+x\r\n";
  std::size_t consumed = 0;
  bool is_error = false;
  EXPECT_EQ(ParseReply(deep, &consumed, &is_error), ReplyStatus::kProtocolError);
}

}  // namespace
}  // namespace switchyard::loadgen
