// End-to-end, the RESP transport: the real `switchyard load` binary against a private
// redis-server, our own server and canned responders, over real sockets: requests sent exactly and
// on schedule, stalls of either side charged where they belong, every command of the mix, replies
// that are not answers, and connections that fail.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loadgen/e2e_support.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using switchyard::testing::Client;
using switchyard::testing::FreeLoopbackPort;
using switchyard::testing::RunBinary;

TEST_F(LoadE2eTest, ClosedLoopSendsExactlyTheRequestsAskedAndRedisSeesThem) {
  RedisServer redis;
  const pb::LoadResult result = Load(redis.port(),
                                     {"-n", "3000", "--warmup", "0", "-c", "6", "-t", "2", "-P",
                                      "4", "--mix", "set:1", "--keys", "50"},
                                     "closed");
  ExpectEveryRequestAnswered(result, 3000);
  // Closed loop: a request is due when it is written, so both latencies are the same samples
  // (pipelined replies read together are recorded as runs of equal values).
  EXPECT_EQ(result.latency_uncorrected().p50(), result.latency().p50());
  EXPECT_EQ(result.latency_uncorrected().p99(), result.latency().p99());
  EXPECT_EQ(result.latency_uncorrected().max(), result.latency().max());
  EXPECT_DOUBLE_EQ(result.latency_uncorrected().mean(), result.latency().mean());
  EXPECT_EQ(result.histogram_reply_pickup().total(), 0u);  // measured in open loop only
  EXPECT_NE(last_output_.find("throughput"), std::string::npos) << last_output_;
  // The server saw SETs on at most 50 keys of ours.
  Client client(redis.port());
  auto size = client.Command({"DBSIZE"});
  EXPECT_GT(size->integer, 0);
  EXPECT_LE(size->integer, 50);
  auto key = client.Command({"GET", "key:000000000007"});
  ASSERT_TRUE(key->type == REDIS_REPLY_STRING || key->type == REDIS_REPLY_NIL);
  if (key->type == REDIS_REPLY_STRING) {
    EXPECT_EQ(key->len, 64u);  // the default --value-size
  }
}

TEST_F(LoadE2eTest, OpenLoopSendsOnSchedule) {
  RedisServer redis;
  // 2000/s for 1 s after a 200 ms warm-up: the schedule has exactly 2000 intended times in the
  // measured second, however late the machine runs them.
  const pb::LoadResult result =
      Load(redis.port(), {"--rate", "2000", "-d", "1s", "--warmup", "200ms", "-c", "8"}, "open");
  EXPECT_NEAR(static_cast<double>(result.requests()), 2000, 8);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_DOUBLE_EQ(result.target_rate(), 2000);
  EXPECT_EQ(result.histogram_schedule_lag().total(), result.requests());
  // Corrected latency counts from the intended time, which is never after the actual write.
  EXPECT_GE(result.latency().max(), result.latency_uncorrected().max());
  EXPECT_GE(result.latency().mean(), result.latency_uncorrected().mean());
  // Reply pickup, once a read, is part of the latency of every reply that read took: a reply
  // cannot reach the socket before its request was written.
  EXPECT_GT(result.histogram_reply_pickup().total(), 0u);
  EXPECT_LE(result.histogram_reply_pickup().total(), result.requests());
  EXPECT_LE(result.reply_pickup().max(), result.latency_uncorrected().max());
  // By default it learned how early to wake before each send to spin to the exact time, and
  // says the window it ended with and how long it spun (never more than the CPU it used).
  EXPECT_GT(result.spec().spin_seconds(), 0);
  EXPECT_LE(result.spec().spin_seconds(), 0.0021);
  EXPECT_LE(result.client_spin_seconds(), result.client_cpu_seconds());
  EXPECT_GE(result.client_run_queue_wait_seconds(), 0);
  EXPECT_LT(result.client_run_queue_wait_seconds(), 1.3);  // it cannot wait longer than it ran
  // The machine's steal over the run is a share of its CPU time (0 on bare metal).
  EXPECT_GE(result.machine_steal_fraction(), 0);
  EXPECT_LT(result.machine_steal_fraction(), 1);
  // Sleeping until each request is due, and spinning all the time, keep the same schedule.
  ExpectSleepingAndBusyPollingKeepTheSchedule(redis.port());
}

// A 0.3 s stall of the server in the middle of a constant-rate run must show in the corrected
// tail: every request due during the stall waits for its end (wrk2's demonstration).
TEST_F(LoadE2eTest, ServerStallShowsInCorrectedTail) {
  RedisServer redis;
  const pb::LoadResult result = LoadThroughAStall(redis.port(), redis.pid());
  EXPECT_EQ(result.failed(), 0u);
  // About 300 of 3000 requests fell due during the stall, waiting up to its full length: the
  // max is at least the stall (minus a millisecond of scheduling), and p99 well into it.
  EXPECT_GE(result.latency().max(), 0.29);
  EXPECT_GE(result.latency().p99(), 0.15);
  // And the wait was the server's: no reply sat long in the load generator's sockets.
  EXPECT_GT(result.histogram_reply_pickup().total(), 0u);
  EXPECT_LT(result.reply_pickup().max(), 0.1);
}

TEST_F(LoadE2eTest, ALoadGeneratorStallShowsInReplyPickupAndIsFlagged) {
  // Each request waits 5 ms in the server (SY.WAIT, no CPU), so at 1000/s about five are in
  // flight whenever the load generator is stopped, and their replies wait in its sockets.
  switchyard::testing::ServerProcess server("coroutine");
  const std::string name = "client_stall";
  const std::string json = TempPath(name + ".json");  // the path Load() gives it
  pb::LoadResult result;
  std::thread load([&] {
    result = Load(
        server.port(),
        {"--rate", "1000", "-d", "2s", "--warmup", "0", "-c", "8", "--mix", "sy.wait:5000"}, name);
  });
  int pid = -1;
  for (int attempt = 0; attempt < 200 && pid < 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pid = FindLoadProcess(json);
  }
  ASSERT_GT(pid, 0) << "switchyard load never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  kill(pid, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGCONT);
  load.join();
  EXPECT_EQ(result.failed(), 0u);
  // Replies that came back while it was stopped waited for it in the socket: the reply pickup
  // says so, as the corrected latency charges the stop to every request due in it, and the run
  // is flagged as the load generator's limit, not reported as the server's figures.
  EXPECT_GE(result.reply_pickup().max(), 0.25);
  EXPECT_GE(result.latency().max(), 0.29);
  EXPECT_TRUE(result.client_limited()) << result.client_limited_reason();
  EXPECT_NE(last_output_.find("reply pickup"), std::string::npos) << last_output_;
}

TEST_F(LoadE2eTest, AgainstOurServerWithEveryCommand) {
  switchyard::testing::ServerProcess server("coroutine");
  LoadEveryCommand(server.port());  // every command of the mix is one the server knows
  const std::string scrape = switchyard::testing::ScrapeMetrics(server.metrics_port());
  for (const char* command : {"sy.wait", "incrby", "mget", "mset"}) {
    EXPECT_GT(switchyard::testing::MetricValue(
                  scrape, "switchyard_requests_total{command=\"" + std::string(command) + "\"}"),
              0)
        << command;
  }
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// INCRBY, MGET and MSET against redis-server, the reference: every reply is an answer, and each
// counter holds a multiple of its increment (its number mod 10, plus 1), as many as redis-server
// says it ran INCRBY.
TEST_F(LoadE2eTest, IncrByMGetAndMSetAgainstRedis) {
  RedisServer redis;
  const pb::LoadResult result =
      Load(redis.port(),
           {"-n", "3000", "--warmup", "0", "-c", "4", "-P", "8", "--mix", "incrby,mget:4,mset:4:2",
            "--keys", "30", "--value-size", "8-64"},
           "multi");
  ExpectEveryRequestAnswered(result, 3000);
  Client client(redis.port());
  const auto calls = [&](const std::string& command) {
    const auto info = client.Command({"INFO", "commandstats"});
    const std::string text(info->str, info->len);
    const std::size_t at = text.find("cmdstat_" + command + ":calls=");
    return at == std::string::npos ? 0 : std::stoll(text.substr(at + command.size() + 15));
  };
  const long long incrby = calls("incrby"), mget = calls("mget"), mset = calls("mset");
  EXPECT_EQ(incrby + mget + mset, 3000);
  EXPECT_NEAR(mset, 1500, 200) << "mset's weight is 2 of 4";
  long long increments = 0;
  for (int k = 0; k < 30; ++k) {
    char key[32];
    std::snprintf(key, sizeof key, "counter:%012d", k);
    const auto reply = client.Command({"GET", key});
    if (reply->type == REDIS_REPLY_NIL) continue;
    const long long value = std::stoll(std::string(reply->str, reply->len));
    EXPECT_EQ(value % (k % 10 + 1), 0) << key << " = " << value;
    increments += value / (k % 10 + 1);
  }
  EXPECT_EQ(increments, incrby);
  // MSET wrote the mix's keys, with values of --value-size.
  const auto values = client.Command({"MGET", "key:000000000000", "key:000000000029"});
  ASSERT_EQ(values->type, REDIS_REPLY_ARRAY);
  for (std::size_t i = 0; i < values->elements; ++i) {
    ASSERT_EQ(values->element[i]->type, REDIS_REPLY_STRING) << "30 keys, 6000 pairs: all written";
    EXPECT_GE(values->element[i]->len, 8u);
    EXPECT_LE(values->element[i]->len, 64u);
  }
}

// An MGET's reply must be an array of one element a key: another shape is counted as an error,
// as an error reply is, and the connection goes on.
TEST_F(LoadE2eTest, AnMGetReplyOfTheWrongShapeIsAnError) {
  CannedResponder two_values("MGET\r\n", "*2\r\n$1\r\na\r\n$-1\r\n");
  for (const auto& [mix, errors] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"mget:2", 0}, {"mget:3", 200}, {"mget:1", 200}}) {
    const pb::LoadResult result = Load(
        two_values.port(), {"-n", "200", "--warmup", "0", "-c", "2", "-P", "4", "--mix", mix}, mix);
    EXPECT_EQ(result.requests(), 200u) << mix;
    EXPECT_EQ(result.errors(), errors) << mix;
    EXPECT_EQ(result.connections_lost(), 0u) << mix;
  }
  CannedResponder not_an_array("MGET\r\n", "$1\r\na\r\n");
  const pb::LoadResult result = Load(
      not_an_array.port(), {"-n", "50", "--warmup", "0", "-c", "1", "--mix", "mget:1"}, "bulk");
  EXPECT_EQ(result.errors(), 50u);
}

TEST_F(LoadE2eTest, ErrorRepliesAreCountedAsErrors) {
  switchyard::testing::ServerProcess server("coroutine");
  // INCR on counters after SETting them to text would fail; simpler: a key SET by the test.
  Client client(server.port());
  client.Command({"SET", "counter:000000000000", "not a number"});
  const pb::LoadResult result =
      Load(server.port(), {"-n", "100", "--warmup", "0", "-c", "1", "--mix", "incr", "--keys", "1"},
           "errors");
  EXPECT_EQ(result.requests(), 100u);
  EXPECT_EQ(result.errors(), 100u);
}

TEST_F(LoadE2eTest, ServerThatDiesIsReported) {
  auto server = std::make_unique<switchyard::testing::ServerProcess>("coroutine");
  const std::uint16_t port = server->port();
  pb::LoadResult result;
  std::thread load([&] {
    result = Load(port, {"--rate", "1000", "-d", "3s", "--warmup", "0", "-c", "4"}, "dies");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  server->Stop(SIGKILL);
  load.join();
  // Every connection is given up with its reason, and what it still owed counts as failed.
  EXPECT_EQ(result.connections_lost(), 4u);
  EXPECT_FALSE(result.first_loss().empty());
  EXPECT_LT(result.requests(), 3000u);
  EXPECT_NE(last_output_.find("connections lost: 4"), std::string::npos) << last_output_;
}

// A server whose listen backlog is full never answers a new connection's SYN: without a timeout
// the client would wait out the kernel's SYN retries, two minutes, before saying anything.
TEST_F(LoadE2eTest, AConnectionNeverAcceptedTimesOutWithAClearError) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 0), 0);  // a backlog of one, never accepted
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::string output;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(RunBinary({"load", "--port", std::to_string(ntohs(address.sin_port)), "-c", "20", "-n",
                       "20", "--connect-timeout", "300ms"},
                      &output),
            1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_NE(output.find("no answer within 0.3s (after "), std::string::npos) << output;
  close(listener);
}

}  // namespace
}  // namespace switchyard::loadgen
