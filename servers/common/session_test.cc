// Session with the buffers it borrows (io_buffers.h): a connection waiting for its next request
// holds none, one with a request in part or a large one holds its own, and every byte is counted
// in the tally switchyard_io_buffer_bytes reads. Driven as a model drives it, without a socket.
#include "servers/common/session.h"

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "servers/common/io_buffers.h"

namespace switchyard {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : metrics_("test", CommandLabels()), context_{config_, *store_, metrics_} {
    io_buffers::CountIn(&tally_);
  }
  ~SessionTest() override { io_buffers::StopCountingIn(&tally_); }

  // What a model does when `bytes` arrive: read them, run what is complete and send the replies.
  // Returns the replies. The model then waits for the socket, without trying another read.
  static std::string Deliver(Session& session, std::string_view bytes) {
    std::string replies;
    while (!bytes.empty()) {
      ReadFrom(session, &bytes);
      for (Session::Step step = session.Process();; step = session.Process()) {
        replies += session.output();
        if (!session.output().empty()) session.OutputSent();
        if (step.next != Session::Next::kFlush) break;
      }
    }
    return replies;  // the model now waits for the socket (without trying another read first)
  }

  // One read, as a model makes it: as much of `*unread` as the session's read space takes,
  // committed, and dropped from `*unread`.
  static void ReadFrom(Session& session, std::string_view* unread) {
    const auto space = session.ReadSpace();
    const std::size_t n = std::min(space.size(), unread->size());
    unread->copy(space.data(), n);
    unread->remove_prefix(n);
    session.CommitRead(n);
  }

  // Runs `body` on a thread of its own, whose buffer cache starts empty and is freed when it ends,
  // so that no test sees what another left cached.
  template <typename Body>
  static void OnFreshThread(Body body) {
    std::thread(body).join();
  }

  std::atomic<std::int64_t> tally_{0};
  ServerConfig config_;
  std::unique_ptr<Store> store_ = Store::Create(8 << 20);
  Metrics metrics_;
  ServerContext context_;
};

TEST_F(SessionTest, IdleSessionsHoldNoBuffers) {
  OnFreshThread([&] {
    std::vector<std::unique_ptr<Session>> sessions;
    for (int i = 0; i < 100; ++i) {
      sessions.push_back(std::make_unique<Session>(context_));
      EXPECT_EQ(Deliver(*sessions.back(), "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"),
                "$5\r\nhello\r\n");
    }
    // What is alive is the thread's cache, whatever the number of connections.
    EXPECT_GT(tally_.load(), 0);
    EXPECT_LE(tally_.load(), static_cast<std::int64_t>(2 * io_buffers::kInputBytes))
        << "100 idle sessions must not hold a read buffer each";
  });
}

TEST_F(SessionTest, PartialRequestKeepsItsOwnBufferUntilComplete) {
  OnFreshThread([&] {
    Session warm(context_);
    Deliver(warm, "PING\r\n");  // the cache now holds what one request needs
    const std::int64_t cached = tally_.load();

    std::vector<std::unique_ptr<Session>> partial;
    for (int i = 0; i < 10; ++i) {
      partial.push_back(std::make_unique<Session>(context_));
      EXPECT_EQ(Deliver(*partial.back(), "*2\r\n$4\r\nECHO\r\n$5\r\nhel"), "");
    }
    EXPECT_GE(tally_.load(), cached + static_cast<std::int64_t>(9 * io_buffers::kInputBytes))
        << "each partial request keeps the bytes it has so far";

    for (auto& session : partial) EXPECT_EQ(Deliver(*session, "lo\r\n"), "$5\r\nhello\r\n");
    partial.clear();
    EXPECT_LE(tally_.load(), cached + static_cast<std::int64_t>(4 * io_buffers::kInputBytes))
        << "completed, they gave their buffers back (the cache keeps a few, frees the rest)";
  });
}

TEST_F(SessionTest, LargeRequestGrowsItsBufferAndFreesItWhenDone) {
  OnFreshThread([&] {
    Session session(context_);
    const std::string value(256 << 10, 'v');  // past kKeepBytes
    const std::string request =
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    // All but the last byte: the buffer has grown to hold the value, and is still held.
    EXPECT_EQ(Deliver(session, std::string_view(request).substr(0, request.size() - 1)), "");
    EXPECT_GE(tally_.load(), static_cast<std::int64_t>(value.size()));
    EXPECT_EQ(Deliver(session, "\n"), "+OK\r\n");
    EXPECT_LT(tally_.load(), static_cast<std::int64_t>(value.size()))
        << "a grown buffer is freed once empty, not cached";

    const std::string get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    EXPECT_EQ(Deliver(session, get), "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n");
    EXPECT_LT(tally_.load(), static_cast<std::int64_t>(value.size()))
        << "a reply buffer grown past kKeepBytes is freed once sent";
  });
}

TEST_F(SessionTest, AModelThatBlocksInItsReadStillFreesAGrownBuffer) {
  OnFreshThread([&] {
    Session session(context_);
    const std::string value(256 << 10, 'v');
    const std::string request =
        "*2\r\n$4\r\nECHO\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    std::string_view unread = request;
    while (!unread.empty()) {  // as thread_per_conn reads: never a read of nothing
      ReadFrom(session, &unread);
      session.Process();
      if (!session.output().empty()) session.OutputSent();
    }
    EXPECT_GE(tally_.load(), static_cast<std::int64_t>(value.size())) << "grown, still held";
    EXPECT_EQ(session.Process().next, Session::Next::kNeedInput);
    EXPECT_LT(tally_.load(), static_cast<std::int64_t>(value.size()))
        << "freed before the next blocking read, though no read came back empty";
  });
}

TEST_F(SessionTest, RepliesNotYetSentStayWithTheConnection) {
  OnFreshThread([&] {
    Session session(context_);
    std::string_view pings = "PING\r\nPING\r\n";
    ReadFrom(session, &pings);
    EXPECT_EQ(session.Process().next, Session::Next::kNeedInput);
    session.ReadSpace();
    session.CommitRead(0);  // nothing more to read, and the replies are not written yet
    EXPECT_EQ(session.output(), "+PONG\r\n+PONG\r\n");
    session.OutputSent();
    EXPECT_EQ(session.output(), "");
  });
}

TEST_F(SessionTest, AWaitInAPipelineKeepsTheRepliesInOrder) {
  OnFreshThread([&] {
    Session session(context_);
    std::string_view pipeline = "ECHO before\r\nSY.WAIT 0\r\nECHO after\r\n";
    ReadFrom(session, &pipeline);
    std::string replies;
    EXPECT_EQ(session.Process().next, Session::Next::kWait);
    replies += session.output();  // written before the wait, as every model does
    session.OutputSent();
    session.FinishWait();
    EXPECT_EQ(session.Process().next, Session::Next::kNeedInput);
    replies += session.output();
    EXPECT_EQ(replies, "$6\r\nbefore\r\n+OK\r\n$5\r\nafter\r\n");
  });
}

TEST_F(SessionTest, ByteAtATimeIsServedLikeAWholeRequest) {
  OnFreshThread([&] {
    Session session(context_);
    std::string replies;
    for (const char byte : std::string_view("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n"))
      replies += Deliver(session, std::string_view(&byte, 1));
    EXPECT_EQ(replies, "$2\r\nhi\r\n+PONG\r\n");
  });
}

}  // namespace
}  // namespace switchyard
