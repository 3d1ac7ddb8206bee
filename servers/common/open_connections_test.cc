// OpenConnections on real socket pairs: admission against --max-clients, closing, a failing
// connection, and the graceful stop (stop reading, drain, deadline). The models' own stop paths are
// tested through the real binary in tests/stop_test.cc.
#include "servers/common/open_connections.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "servers/common/commands.h"

namespace switchyard {
namespace {

using namespace std::chrono_literals;

// The far end of one connection; the near end is what the server would hold.
struct Pair {
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() { close(fds[1]); }
  int server() const { return fds[0]; }
  // What the server sent, up to end-of-file (the far end is blocking).
  std::string ReadAll() const {
    std::string data;
    char buffer[256];
    for (ssize_t n; (n = read(fds[1], buffer, sizeof buffer)) > 0;) data.append(buffer, n);
    return data;
  }
  int fds[2];
};

class OpenConnectionsTest : public ::testing::Test {
 protected:
  OpenConnectionsTest() : metrics_("test", CommandLabels()), context_{config_, *store_, metrics_} {}

  ServerConfig config_;
  std::unique_ptr<Store> store_ = Store::Create(1 << 20);
  Metrics metrics_;
  ServerContext context_;
};

TEST_F(OpenConnectionsTest, AdmitsUpToMaxClientsThenSendsRedisError) {
  config_.max_clients = 1;
  OpenConnections open(context_);
  Pair first, second;
  ASSERT_TRUE(open.Admit(first.server()));
  ASSERT_FALSE(open.Admit(second.server()));
  close(second.server());  // a refused socket is the caller's to close
  EXPECT_EQ(second.ReadAll(), "-ERR max number of clients reached\r\n");
  EXPECT_EQ(open.open(), 1u);
  open.Close(first.server());
  EXPECT_EQ(first.ReadAll(), "") << "closed: end-of-file";
  EXPECT_EQ(open.open(), 0u);
  Pair third;
  EXPECT_TRUE(open.Admit(third.server())) << "a closed connection frees its place";
  open.Close(third.server());
}

TEST_F(OpenConnectionsTest, ServeCountsWhatEscapesAndClosesThatConnectionOnly) {
  OpenConnections open(context_);
  Pair failing, other;
  ASSERT_TRUE(open.Admit(failing.server()));
  ASSERT_TRUE(open.Admit(other.server()));
  open.Serve(failing.server(), [] { throw std::runtime_error("out of memory, say"); });
  EXPECT_EQ(failing.ReadAll(), "");
  EXPECT_EQ(open.open(), 1u);
  open.Serve(other.server(), [&] { ASSERT_EQ(write(other.server(), "+OK\r\n", 5), 5); });
  EXPECT_EQ(other.ReadAll(), "+OK\r\n");
}

TEST_F(OpenConnectionsTest, StopReadingEndsEveryReadAndRefusesNewConnections) {
  OpenConnections open(context_);
  Pair connection, late;
  ASSERT_TRUE(open.Admit(connection.server()));
  bool drained = false;
  open.StopReading([&] { drained = true; });
  EXPECT_TRUE(open.stopping());
  char byte;
  EXPECT_EQ(read(connection.server(), &byte, 1), 0) << "stopped reading: end-of-file at once";
  EXPECT_EQ(write(connection.server(), "+owed\r\n", 7), 7) << "replies still go out";
  EXPECT_FALSE(drained);
  EXPECT_FALSE(open.Admit(late.server()));
  close(late.server());
  EXPECT_EQ(late.ReadAll(), "-ERR the server is shutting down\r\n");
  open.Close(connection.server());
  EXPECT_TRUE(drained) << "the last close runs the drained callback";
  EXPECT_EQ(connection.ReadAll(), "+owed\r\n");
  EXPECT_TRUE(open.WaitUntilDrained());
  EXPECT_EQ(open.Finish(), 0);
}

TEST_F(OpenConnectionsTest, StopWithNothingOpenIsDrainedAtOnce) {
  OpenConnections open(context_);
  bool drained = false;
  open.StopReading([&] { drained = true; });
  EXPECT_TRUE(drained);
  EXPECT_TRUE(open.WaitUntilDrained());
}

TEST_F(OpenConnectionsTest, WaitEndsAtTheDeadlineAndFinishExitsOne) {
  config_.shutdown_timeout = 0.2;
  OpenConnections open(context_);
  Pair stuck;
  ASSERT_TRUE(open.Admit(stuck.server()));
  const auto started = std::chrono::steady_clock::now();
  open.StopReading();
  EXPECT_FALSE(open.WaitUntilDrained());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  EXPECT_EXIT(open.Finish(), ::testing::ExitedWithCode(1),
              "1 connections still open after 0.2s; stopping anyway");
  open.Close(stuck.server());
}

TEST_F(OpenConnectionsTest, CloseOnAnotherThreadWakesTheWaiter) {
  OpenConnections open(context_);
  Pair connection;
  ASSERT_TRUE(open.Admit(connection.server()));
  open.StopReading();
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    open.Close(connection.server());
  });
  EXPECT_TRUE(open.WaitUntilDrained());
  closer.join();
}

}  // namespace
}  // namespace switchyard
