// The conformance suite every model must pass: the real server binary on free loopback ports,
// driven over real sockets by hiredis, raw bytes, redis-cli and redis-benchmark. Every RESP model
// of the registry (servers/models.cc) runs it: a new model joins by its entry there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/models.h"
#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

std::string Bulk(const redisReply* reply) {
  if (reply == nullptr) return "<no reply>";
  if (reply->type == REDIS_REPLY_NIL) return "<nil>";
  return std::string(reply->str, reply->len);
}

// True once `connections` established sockets on the server's side of `port` (IPv4 loopback) have
// empty receive queues, /proc/net/tcp's rx_queue: the server has read what was sent. Bounded.
bool ServerReadEverything(std::uint16_t port, int connections, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::getline(table, line);  // the header
    int drained = 0, waiting = 0;
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues;
      fields >> slot >> local >> remote >> state >> queues;
      if (state != "01" || std::stoul(local.substr(local.find(':') + 1), nullptr, 16) != port) {
        continue;
      }
      (std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16) == 0 ? drained : waiting)++;
    }
    if (drained >= connections && waiting == 0) return true;
    std::this_thread::sleep_for(5ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { server_ = std::make_unique<ServerProcess>(GetParam(), ModelFlags()); }
  // Restarts the server with extra flags (limits) for one test.
  void Restart(std::vector<std::string> flags) {
    server_.reset();
    const auto model_flags = ModelFlags();
    flags.insert(flags.end(), model_flags.begin(), model_flags.end());
    server_ = std::make_unique<ServerProcess>(GetParam(), flags);
  }
  // Sizes that keep a test run light: 16 prefork processes serve every test here (the most
  // connections one keeps open at once is redis-benchmark's 8), not the default 256.
  std::vector<std::string> ModelFlags() const {
    if (GetParam() == "prefork") return {"--workers", "16"};
    return {};
  }
  std::uint16_t port() const { return server_->port(); }

  void ExpectStatus(Client& client, const std::vector<std::string>& args, const std::string& s) {
    Reply reply = client.Command(args);
    ASSERT_TRUE(reply) << args[0];
    EXPECT_EQ(reply->type, REDIS_REPLY_STATUS) << args[0] << ": " << Bulk(reply.get());
    EXPECT_EQ(Bulk(reply.get()), s);
  }
  void ExpectError(Client& client, const std::vector<std::string>& args, const std::string& s) {
    Reply reply = client.Command(args);
    ASSERT_TRUE(reply) << args[0];
    EXPECT_EQ(reply->type, REDIS_REPLY_ERROR) << args[0] << ": " << Bulk(reply.get());
    EXPECT_EQ(Bulk(reply.get()), s);
  }
  void ExpectBulk(Client& client, const std::vector<std::string>& args, const std::string& s) {
    Reply reply = client.Command(args);
    ASSERT_TRUE(reply) << args[0];
    EXPECT_EQ(reply->type, REDIS_REPLY_STRING) << args[0] << ": " << Bulk(reply.get());
    EXPECT_EQ(Bulk(reply.get()), s);
  }
  void ExpectInteger(Client& client, const std::vector<std::string>& args, long long n) {
    Reply reply = client.Command(args);
    ASSERT_TRUE(reply) << args[0];
    EXPECT_EQ(reply->type, REDIS_REPLY_INTEGER) << args[0] << ": " << Bulk(reply.get());
    EXPECT_EQ(reply->integer, n);
  }
  // Sends `request` raw and expects exactly `reply`, then the connection closed by the server.
  void ExpectProtocolError(const std::string& request, const std::string& reply) {
    RawConnection raw(port());
    raw.Send(request);
    std::string received;
    EXPECT_TRUE(raw.ReadUntilClosed(&received)) << "connection left open after a protocol error";
    EXPECT_EQ(received, reply);
    Client other(port());  // and the server keeps serving everyone else
    ExpectStatus(other, {"PING"}, "PONG");
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_P(Conformance, PingAndEcho) {
  Client client(port());
  ExpectStatus(client, {"PING"}, "PONG");
  ExpectBulk(client, {"PING", "hello"}, "hello");
  ExpectBulk(client, {"ECHO", "hello world"}, "hello world");
  ExpectBulk(client, {"echo", ""}, "");
  ExpectError(client, {"ECHO"}, "ERR wrong number of arguments for 'echo' command");
  ExpectError(client, {"PING", "a", "b"}, "ERR wrong number of arguments for 'ping' command");
}

// Nagle's algorithm off on every accepted connection (as Redis does): with it on, a reply written
// while the previous one is unacknowledged waits for the client's delayed ACK, 40 ms on Linux.
TEST_P(Conformance, EveryConnectionHasNoDelay) {
  std::vector<std::unique_ptr<RawConnection>> connections;
  for (int i = 0; i < 3; ++i) {
    connections.push_back(std::make_unique<RawConnection>(port()));
    connections.back()->Send("PING\r\n");
    ASSERT_EQ(connections.back()->ReadSome(7), "+PONG\r\n");  // accepted and being served
  }
  const std::vector<bool> no_delay = ServerConnectionsNoDelay(*server_);
  EXPECT_EQ(no_delay.size(), 3u) << "the server's connections on its port";
  for (const bool on : no_delay) EXPECT_TRUE(on) << "an accepted connection without TCP_NODELAY";
}

TEST_P(Conformance, InlineCommands) {
  RawConnection raw(port());
  raw.Send("PING\r\nPING\nECHO \"a b\\x41\"\r\n");
  EXPECT_EQ(raw.ReadSome(21), "+PONG\r\n+PONG\r\n$4\r\na bA\r\n");
}

TEST_P(Conformance, SetGetDel) {
  Client client(port());
  ExpectStatus(client, {"SET", "k1", "v1"}, "OK");
  ExpectBulk(client, {"GET", "k1"}, "v1");
  ExpectStatus(client, {"set", "k1", "v2"}, "OK");
  ExpectBulk(client, {"get", "k1"}, "v2");
  ExpectStatus(client, {"SET", "k2", ""}, "OK");
  ExpectBulk(client, {"GET", "k2"}, "");
  Reply missing = client.Command({"GET", "nope"});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->type, REDIS_REPLY_NIL);
  ExpectInteger(client, {"DEL", "k1", "k2", "nope"}, 2);
  ExpectInteger(client, {"DEL", "k1"}, 0);
  ExpectError(client, {"SET", "k", "v", "NOSUCHOPTION"}, "ERR syntax error");
  ExpectError(client, {"GET"}, "ERR wrong number of arguments for 'get' command");
}

TEST_P(Conformance, Incr) {
  Client client(port());
  ExpectInteger(client, {"INCR", "counter"}, 1);
  ExpectInteger(client, {"INCR", "counter"}, 2);
  ExpectStatus(client, {"SET", "n", "-5"}, "OK");
  ExpectInteger(client, {"INCR", "n"}, -4);
  ExpectStatus(client, {"SET", "word", "abc"}, "OK");
  ExpectError(client, {"INCR", "word"}, "ERR value is not an integer or out of range");
  ExpectStatus(client, {"SET", "spaced", " 1"}, "OK");
  ExpectError(client, {"INCR", "spaced"}, "ERR value is not an integer or out of range");
  ExpectStatus(client, {"SET", "max", "9223372036854775807"}, "OK");
  ExpectError(client, {"INCR", "max"}, "ERR increment or decrement would overflow");
  ExpectBulk(client, {"GET", "max"}, "9223372036854775807");
}

TEST_P(Conformance, BinarySafeKeysAndValues) {
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  const std::string value = every_byte + "\r\n$3\r\n*1\r\n" + every_byte;
  Client client(port());
  ExpectStatus(client, {"SET", every_byte, value}, "OK");
  ExpectBulk(client, {"GET", every_byte}, value);
  ExpectBulk(client, {"ECHO", value}, value);
  ExpectInteger(client, {"DEL", every_byte}, 1);
}

TEST_P(Conformance, OneMebibyteValue) {
  std::string value(1 << 20, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + i / 4096);
  Client client(port());
  ExpectStatus(client, {"SET", "big", value}, "OK");
  ExpectBulk(client, {"GET", "big"}, value);
}

TEST_P(Conformance, TenThousandPipelinedCommandsAnsweredInOrder) {
  Client client(port());
  constexpr int kCommands = 10000;
  for (int i = 0; i < kCommands; ++i) {
    if (i % 2 == 0) {
      client.Append({"ECHO", "m" + std::to_string(i)});
    } else {
      client.Append({"INCR", "pipelined"});
    }
  }
  for (int i = 0; i < kCommands; ++i) {
    Reply reply = client.GetReply();
    ASSERT_TRUE(reply) << "reply " << i;
    if (i % 2 == 0) {
      ASSERT_EQ(Bulk(reply.get()), "m" + std::to_string(i));
    } else {
      ASSERT_EQ(reply->type, REDIS_REPLY_INTEGER);
      ASSERT_EQ(reply->integer, i / 2 + 1);
    }
  }
}

TEST_P(Conformance, IncrFrom32ConnectionsLosesNoUpdate) {
  constexpr int kConnections = 32, kIncrements = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kConnections; ++t) {
    threads.emplace_back([&] {
      Client client(port());
      for (int i = 0; i < kIncrements; ++i) {
        Reply reply = client.Command({"INCR", "shared"});
        if (!reply || reply->type != REDIS_REPLY_INTEGER) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  Client client(port());
  ExpectBulk(client, {"GET", "shared"}, std::to_string(kConnections * kIncrements));
}

TEST_P(Conformance, UnknownCommandKeepsConnectionOpen) {
  Client client(port());
  ExpectError(client, {"NOSUCH", "a", "b"},
              "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ");
  ExpectError(client, {"nosuch"}, "ERR unknown command 'nosuch', with args beginning with: ");
  ExpectStatus(client, {"PING"}, "PONG");
}

TEST_P(Conformance, WhatClientsSendAtStart) {
  Client client(port());
  Reply command = client.Command({"COMMAND", "DOCS"});
  ASSERT_TRUE(command);
  EXPECT_EQ(command->type, REDIS_REPLY_ARRAY);
  Reply config = client.Command({"CONFIG", "GET", "save"});
  ASSERT_TRUE(config);
  ASSERT_EQ(config->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(config->elements, 2u);
  EXPECT_EQ(Bulk(config->element[0]), "save");
  Reply maxclients = client.Command({"CONFIG", "GET", "maxclients"});
  ASSERT_TRUE(maxclients);
  ASSERT_EQ(maxclients->elements, 2u);
  EXPECT_EQ(Bulk(maxclients->element[1]), "10000");
  ExpectStatus(client, {"CLIENT", "SETNAME", "conformance"}, "OK");
  Reply id = client.Command({"CLIENT", "ID"});
  ASSERT_TRUE(id);
  EXPECT_EQ(id->type, REDIS_REPLY_INTEGER);
  Reply hello = client.Command({"HELLO", "2"});
  ASSERT_TRUE(hello);
  ASSERT_EQ(hello->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(Bulk(hello->element[0]), "server");
  ExpectError(client, {"HELLO", "3"}, "NOPROTO unsupported protocol version");  // RESP2 only
  ExpectStatus(client, {"SELECT", "0"}, "OK");
  Reply info = client.Command({"INFO"});
  ASSERT_TRUE(info);
  EXPECT_NE(Bulk(info.get()).find("switchyard_model:" + GetParam()), std::string::npos);
}

TEST_P(Conformance, SimulatedWork) {
  Client client(port());
  ExpectStatus(client, {"SY.CPU", "1000"}, "OK");
  ExpectStatus(client, {"SY.BLOCK", "1000"}, "OK");
  const auto started = std::chrono::steady_clock::now();
  ExpectStatus(client, {"SY.WAIT", "50000"}, "OK");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  ExpectError(client, {"SY.WAIT", "-1"}, "ERR usec must be an integer from 0 to 60000000");
  ExpectError(client, {"SY.CPU", "abc"}, "ERR usec must be an integer from 0 to 60000000");
  // A wait in the middle of a pipeline keeps the order of replies.
  client.Append({"ECHO", "before"});
  client.Append({"SY.WAIT", "10000"});
  client.Append({"ECHO", "after"});
  EXPECT_EQ(Bulk(client.GetReply().get()), "before");
  EXPECT_EQ(Bulk(client.GetReply().get()), "OK");
  EXPECT_EQ(Bulk(client.GetReply().get()), "after");
}

TEST_P(Conformance, QuitRepliesThenCloses) {
  RawConnection raw(port());
  raw.Send("*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n");
  std::string received;
  EXPECT_TRUE(raw.ReadUntilClosed(&received));
  EXPECT_EQ(received, "+OK\r\n");
}

// The malformed inputs of Redis's tests/unit/protocol.tcl, with Redis's replies.
TEST_P(Conformance, InvalidMultibulkLength) {
  ExpectProtocolError("*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
  ExpectProtocolError("*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
}

TEST_P(Conformance, InvalidBulkLength) {
  ExpectProtocolError("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
                      "-ERR Protocol error: invalid bulk length\r\n");
  ExpectProtocolError("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
                      "-ERR Protocol error: invalid bulk length\r\n");
  ExpectProtocolError("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
                      "-ERR Protocol error: invalid bulk length\r\n");
}

TEST_P(Conformance, ExpectedDollar) {
  ExpectProtocolError("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
                      "-ERR Protocol error: expected '$', got 'f'\r\n");
  ExpectProtocolError("*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n");
}

TEST_P(Conformance, UnbalancedQuotes) {
  ExpectProtocolError("set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
                      "-ERR Protocol error: unbalanced quotes in request\r\n");
}

TEST_P(Conformance, TooBigInlineRequest) {
  ExpectProtocolError(std::string(70000, 'a'), "-ERR Protocol error: too big inline request\r\n");
}

TEST_P(Conformance, EmptyLinesAndNegativeCountsAreSkipped) {
  RawConnection raw(port());
  raw.Send("\r\n\r\n\nPING\r\n*-10\r\nPING\r\n*0\r\n*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(raw.ReadSome(21), "+PONG\r\n+PONG\r\n+PONG\r\n");
}

// Redis's "protocol desync" regression: endless junk after these prefixes must be cut off with a
// protocol error within a bounded size and time, never buffered forever.
TEST_P(Conformance, ProtocolDesyncIsCutOff) {
  for (const std::string& prefix :
       {std::string("\x00", 1), std::string("*\x00", 2), std::string("$\x00", 2)}) {
    RawConnection raw(port());
    raw.Send(prefix);
    const std::string junk = std::string(1024, 'A') + "\n";
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::size_t sent = 0;
    while (std::chrono::steady_clock::now() < deadline && sent < (64u << 20)) {
      const ssize_t n = send(raw.fd(), junk.data(), junk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed the connection: good
      sent += static_cast<std::size_t>(n);
    }
    std::string received;
    raw.ReadUntilClosed(&received, 2s);
    EXPECT_LT(sent, 16u << 20) << "the server kept accepting junk";
    EXPECT_NE(received.find("-ERR Protocol error"), std::string::npos) << received;
  }
  Client client(port());
  ExpectStatus(client, {"PING"}, "PONG");
}

TEST_P(Conformance, MaxClients) {
  Restart({"--max-clients", "2"});
  auto first = std::make_unique<Client>(port());
  Client second(port());
  ExpectStatus(*first, {"PING"}, "PONG");
  ExpectStatus(second, {"PING"}, "PONG");
  RawConnection third(port());
  std::string received;
  EXPECT_TRUE(third.ReadUntilClosed(&received));
  EXPECT_EQ(received, "-ERR max number of clients reached\r\n");
  EXPECT_GE(
      MetricValue(ScrapeMetrics(server_->metrics_port()), "switchyard_connections_rejected_total"),
      1);
  // A freed slot is usable again once the server has seen the close.
  first.reset();
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    Client again(port());
    Reply reply = again.Command({"PING"});
    served = reply && reply->type == REDIS_REPLY_STATUS;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

TEST_P(Conformance, FullStoreAnswersOomAndLosesNothing) {
  Restart({"--store-bytes", "1m"});
  Client client(port());
  const std::string value(64 << 10, 'v');
  int stored = 0;
  for (; stored < 64; ++stored) {
    Reply reply = client.Command({"SET", "key" + std::to_string(stored), value});
    ASSERT_TRUE(reply);
    if (reply->type == REDIS_REPLY_ERROR) {
      EXPECT_EQ(Bulk(reply.get()), "OOM command not allowed when used memory > 'store-bytes'.");
      break;
    }
  }
  ASSERT_GT(stored, 0);
  ASSERT_LT(stored, 64) << "a 1 MiB store took 64 values of 64 KiB";
  for (int i = 0; i < stored; ++i) ExpectBulk(client, {"GET", "key" + std::to_string(i)}, value);
  // Small writes still fit where the big one did not: INCR new keys until those fail too.
  int counters = 0;
  for (; counters < 200000; ++counters) {
    Reply reply = client.Command({"INCR", "c" + std::to_string(counters)});
    ASSERT_TRUE(reply);
    if (reply->type == REDIS_REPLY_ERROR) {
      EXPECT_EQ(Bulk(reply.get()), "OOM command not allowed when used memory > 'store-bytes'.");
      break;
    }
  }
  ASSERT_LT(counters, 200000);
  ExpectBulk(client, {"GET", "c0"}, "1");
  ExpectBulk(client, {"GET", "key" + std::to_string(stored - 1)}, value);
  ExpectInteger(client, {"DEL", "key0"}, 1);
  ExpectStatus(client, {"SET", "key0", value}, "OK");
  EXPECT_GE(MetricValue(ScrapeMetrics(server_->metrics_port()),
                        "switchyard_request_errors_total{kind=\"oom\"}"),
            1);
}

TEST_P(Conformance, SigtermDeliversRepliesInFlight) {
  constexpr int kConnections = 4;
  std::vector<std::unique_ptr<RawConnection>> connections;
  for (int i = 0; i < kConnections; ++i) {
    connections.push_back(std::make_unique<RawConnection>(port()));
    connections.back()->Send("*2\r\n$7\r\nSY.WAIT\r\n$6\r\n300000\r\n*1\r\n$4\r\nPING\r\n");
  }
  // The requests are in (the server has read them: nothing waits in its sockets' receive
  // queues), their replies not yet due.
  ASSERT_TRUE(ServerReadEverything(port(), kConnections, 2s));
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  for (auto& connection : connections) {
    std::string received;
    EXPECT_TRUE(connection->ReadUntilClosed(&received, 5s));
    EXPECT_EQ(received, "+OK\r\n+PONG\r\n");
  }
  EXPECT_EQ(server_->Stop(0, 5s), 0) << "clean exit after the drain";
}

TEST_P(Conformance, SigtermStopsAnIdleServer) {
  Client idle(port());
  ExpectStatus(idle, {"PING"}, "PONG");
  EXPECT_EQ(server_->Stop(SIGTERM, 5s), 0);
}

TEST_P(Conformance, RedisCli) {
  const std::string cli = "redis-cli -p " + std::to_string(port()) + " ";
  EXPECT_EQ(RunShell(cli + "PING"), "PONG\n");
  EXPECT_EQ(RunShell(cli + "SET greeting hello"), "OK\n");
  EXPECT_EQ(RunShell(cli + "GET greeting"), "hello\n");
  EXPECT_EQ(RunShell(cli + "INCR visits"), "1\n");
  EXPECT_EQ(RunShell(cli + "DEL greeting visits"), "2\n");
  EXPECT_NE(RunShell(cli + "NOSUCH 2>&1").find("ERR unknown command 'NOSUCH'"), std::string::npos);
  // Interactive-style input on stdin, several commands on one connection.
  EXPECT_EQ(RunShell("printf 'PING\\nECHO hi\\nINCR c\\nINCR c\\n' | " + cli), "PONG\nhi\n1\n2\n");
}

TEST_P(Conformance, RedisBenchmark) {
  int exit_code = -1;
  const std::string output = RunShell(
      "redis-benchmark -p " + std::to_string(port()) + " -t ping,set,get,incr -n 2000 -c 8 -q 2>&1",
      &exit_code);
  EXPECT_EQ(exit_code, 0) << output;
  for (const char* test : {"PING_INLINE: ", "PING_MBULK: ", "SET: ", "GET: ", "INCR: "}) {
    EXPECT_NE(output.find(test), std::string::npos) << test << " missing in:\n" << output;
  }
  EXPECT_EQ(output.find("ERR"), std::string::npos) << output;
  EXPECT_EQ(output.find("WARN"), std::string::npos) << output;
}

TEST_P(Conformance, Metrics) {
  Client client(port());
  for (int i = 0; i < 10; ++i) ExpectStatus(client, {"PING"}, "PONG");
  ExpectError(client, {"NOSUCH"}, "ERR unknown command 'NOSUCH', with args beginning with: ");
  // A wait suspends a fiber or coroutine for certain; a read need not, when the next request is
  // already there (the client can win that race), and only real suspensions are counted.
  ExpectStatus(client, {"SY.WAIT", "1000"}, "OK");
  const std::string scrape = ScrapeMetrics(server_->metrics_port());
  EXPECT_NE(scrape.find("switchyard_build_info{model=\"" + GetParam() + "\""), std::string::npos);
  EXPECT_EQ(MetricValue(scrape, "switchyard_requests_total{command=\"ping\"}"), 10);
  EXPECT_EQ(MetricValue(scrape, "switchyard_request_errors_total{kind=\"unknown_command\"}"), 1);
  EXPECT_EQ(MetricValue(scrape, "switchyard_request_duration_seconds_count{command=\"ping\"}"), 10);
  EXPECT_EQ(MetricValue(scrape, "switchyard_connections_active"), 1);
  EXPECT_GE(MetricValue(scrape, "switchyard_connections_accepted_total"), 1);
  EXPECT_GT(MetricValue(scrape, "switchyard_os_context_switches_total{kind=\"voluntary\"}"), 0);
  EXPECT_GT(MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"user\"}") +
                MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"system\"}"),
            0);
  EXPECT_GT(MetricValue(scrape, "switchyard_memory_bytes{kind=\"rss\"}"), 1e6);
  EXPECT_GT(MetricValue(scrape, "switchyard_memory_bytes{kind=\"pss\"}"), 1e5);
  EXPECT_GE(MetricValue(scrape, "switchyard_os_threads"), 2);
  const double user_switches = MetricValue(scrape, "switchyard_user_switches_total");
  if (KernelScheduled(GetParam())) {
    EXPECT_EQ(user_switches, 0) << "an OS-scheduled model has no user-space switches";
  } else {
    EXPECT_GT(user_switches, 0);
  }
}

TEST_P(Conformance, BadFlagsAndBusyPortsFailWithOneLine) {
  std::string output;
  EXPECT_NE(RunBinary({"serve", "--model", GetParam(), "--port", "70000"}, &output), 0);
  EXPECT_NE(output.find("--port"), std::string::npos) << output;
  EXPECT_NE(RunBinary({"serve", "--model", GetParam(), "--max-clients", "0"}, &output), 0);
  EXPECT_NE(output.find("--max-clients"), std::string::npos) << output;
  EXPECT_NE(RunBinary({"serve", "--model", GetParam(), "--store-bytes", "12x"}, &output), 0);
  const std::string busy = std::to_string(port());
  EXPECT_EQ(
      RunBinary({"serve", "--model", GetParam(), "--port", busy, "--metrics-port", "0"}, &output),
      1);
  EXPECT_EQ(output,
            "switchyard serve: cannot listen on 127.0.0.1:" + busy + ": Address already in use\n");
  EXPECT_EQ(RunBinary({"serve", "--model", GetParam(), "--port", "0", "--metrics-port",
                       std::to_string(server_->metrics_port())},
                      &output),
            1);
  EXPECT_NE(output.find("cannot serve metrics on 127.0.0.1:"), std::string::npos) << output;
}

INSTANTIATE_TEST_SUITE_P(Models, Conformance, ::testing::ValuesIn(ModelNames("resp")),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace switchyard::testing
