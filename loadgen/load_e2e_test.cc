// End-to-end: the real `switchyard load` binary against a real redis-server (started here on a
// free loopback port, never a system service) and against our own server, over real sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loadgen/histogram.h"
#include "loadgen/load.h"
#include "loadgen/load_command.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using switchyard::testing::Client;
using switchyard::testing::FreeLoopbackPort;
using switchyard::testing::RunBinary;

// A private redis-server: no persistence, loopback only, killed at the end.
class RedisServer {
 public:
  RedisServer() : port_(FreeLoopbackPort()) {
    pid_ = fork();
    if (pid_ == 0) {
      const int null = open("/dev/null", O_WRONLY);  // its start-up banner is noise in test logs
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      const std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning", nullptr);
      _exit(127);
    }
    for (int attempt = 0; attempt < 200; ++attempt) {
      try {
        Client client(port_);
        auto reply = client.Command({"PING"});
        if (reply && reply->type == REDIS_REPLY_STATUS) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw std::runtime_error("redis-server did not start");
  }
  ~RedisServer() {
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::uint16_t port() const { return port_; }
  int pid() const { return pid_; }

 private:
  std::uint16_t port_;
  int pid_ = -1;
};

class LoadE2eTest : public ::testing::Test {
 protected:
  // Where a temporary file of this test goes (TempFile also removes it at the end).
  static std::string TempPath(const std::string& name) {
    return ::testing::TempDir() + "loadgen_" + std::to_string(getpid()) + "_" + name;
  }
  std::string TempFile(const std::string& name) {
    files_.push_back(TempPath(name));
    return files_.back();
  }
  ~LoadE2eTest() override {
    for (const auto& path : files_) std::remove(path.c_str());
  }
  // Runs `switchyard load` and reads its JSON result; fails the test on a non-zero exit.
  pb::LoadResult Load(std::uint16_t port, std::vector<std::string> flags, const std::string& name) {
    const std::string json = TempFile(name + ".json");
    std::vector<std::string> args = {"load", "--port", std::to_string(port), "--json", json, "-q"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::string output;
    const int code = RunBinary(args, &output);
    EXPECT_EQ(code, 0) << output;
    last_output_ = output;
    return ReadResultFile(json);
  }
  std::string last_output_;

 private:
  std::vector<std::string> files_;
};

TEST_F(LoadE2eTest, ClosedLoopSendsExactlyTheRequestsAskedAndRedisSeesThem) {
  RedisServer redis;
  const pb::LoadResult result = Load(redis.port(),
                                     {"-n", "3000", "--warmup", "0", "-c", "6", "-t", "2", "-P",
                                      "4", "--mix", "set:1", "--keys", "50"},
                                     "closed");
  EXPECT_EQ(result.requests(), 3000u);
  EXPECT_EQ(result.errors(), 0u);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_EQ(result.histogram().total(), 3000u);
  EXPECT_GT(result.throughput(), 0);
  EXPECT_GT(result.latency().p50(), 0);
  EXPECT_LE(result.latency().p50(), result.latency().p99());
  EXPECT_LE(result.latency().p99(), result.latency().max());
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
  const pb::LoadResult slept =
      Load(redis.port(),
           {"--rate", "1000", "-d", "500ms", "--warmup", "0", "-c", "3", "--spin", "0"}, "slept");
  EXPECT_NEAR(static_cast<double>(slept.requests()), 500, 3);
  EXPECT_EQ(slept.failed(), 0u);
  EXPECT_EQ(slept.spec().spin_seconds(), 0);
  EXPECT_EQ(slept.client_spin_seconds(), 0);
  const pb::LoadResult spun =
      Load(redis.port(),
           {"--rate", "1000", "-d", "500ms", "--warmup", "0", "-c", "3", "--busy-poll"}, "busy");
  EXPECT_NEAR(static_cast<double>(spun.requests()), 500, 3);
  EXPECT_EQ(spun.failed(), 0u);
  EXPECT_TRUE(spun.spec().busy_poll());
}

// A 0.3 s stall of the server in the middle of a constant-rate run must show in the corrected
// tail: every request due during the stall waits for its end (wrk2's demonstration).
TEST_F(LoadE2eTest, ServerStallShowsInCorrectedTail) {
  RedisServer redis;
  pb::LoadResult result;
  std::thread load([&] {
    result =
        Load(redis.port(), {"--rate", "1000", "-d", "3s", "--warmup", "0", "-c", "4"}, "stall");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  kill(redis.pid(), SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(redis.pid(), SIGCONT);
  load.join();
  EXPECT_EQ(result.failed(), 0u);
  // About 300 of 3000 requests fell due during the stall, waiting up to its full length: the
  // max is at least the stall (minus a millisecond of scheduling), and p99 well into it.
  EXPECT_GE(result.latency().max(), 0.29);
  EXPECT_GE(result.latency().p99(), 0.15);
  // And the wait was the server's: no reply sat long in the load generator's sockets.
  EXPECT_GT(result.histogram_reply_pickup().total(), 0u);
  EXPECT_LT(result.reply_pickup().max(), 0.1);
}

// The process running `switchyard load` with `argument` on its command line, or -1.
int FindLoadProcess(const std::string& argument) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream file(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(" load ") != std::string::npos &&
        cmdline.find(argument) != std::string::npos) {
      return std::atoi(entry.path().filename().c_str());
    }
  }
  return -1;
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

// A RESP responder that answers every request naming `command` (as the load generator writes it,
// "PING\r\n" for PING) with `reply`, whatever the request says: for replies no real server gives.
// With `split_every` N > 0 it behaves as servers written before TCP_NODELAY was the rule: Nagle's
// algorithm is left on, and every Nth reply on a connection is written in two small writes (all
// but its last two bytes, then "\r\n"). The second write finds the first unacknowledged and waits
// for the client's delayed ACK, about 40 ms; the other replies go out at once, so the median stays
// fast.
class CannedResponder {
 public:
  CannedResponder(std::string command, std::string reply, std::uint64_t split_every = 0)
      : command_(std::move(command)), reply_(std::move(reply)), split_every_(split_every) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedResponder() {
    stop_ = true;
    thread_.join();
    for (const Peer& peer : peers_) close(peer.fd);
    close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  struct Peer {
    int fd;
    std::string input;
    std::uint64_t answered = 0;
  };

  // Bounded in time and rounds: 20 ms a wait, and at most a minute in all, whatever the test does.
  void Serve() {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    for (int round = 0; round < 100'000 && !stop_ && std::chrono::steady_clock::now() < give_up;
         ++round) {
      std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
      for (const Peer& peer : peers_) fds.push_back({peer.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      // Closed connections are dropped after the loop, so indices into peers_ stay valid.
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0 && !Answer(peers_[i - 1])) {
          close(peers_[i - 1].fd);
          peers_[i - 1].fd = -1;
        }
      }
      std::erase_if(peers_, [](const Peer& peer) { return peer.fd < 0; });
      if (fds[0].revents & POLLIN) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) peers_.push_back({fd, {}, 0});
      }
    }
  }

  // False once the peer has closed.
  bool Answer(Peer& peer) {
    char buffer[4096];
    const ssize_t received = read(peer.fd, buffer, sizeof buffer);
    if (received <= 0) return false;
    peer.input.append(buffer, static_cast<std::size_t>(received));
    // One reply a request, counted by its command's name: the requests this responder is sent for
    // carry it once each, and their keys never hold it.
    for (std::size_t end; (end = peer.input.find(command_)) != std::string::npos;) {
      peer.input.erase(0, end + command_.size());
      if (split_every_ > 0 && ++peer.answered % split_every_ == 0) {
        Write(peer.fd, std::string_view(reply_).substr(0, reply_.size() - 2));
        Write(peer.fd, "\r\n");
      } else {
        Write(peer.fd, reply_);
      }
    }
    return true;
  }

  static void Write(int fd, std::string_view text) {
    [[maybe_unused]] const ssize_t written = write(fd, text.data(), text.size());
  }

  const std::string command_, reply_;
  const std::uint64_t split_every_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<Peer> peers_;
  std::thread thread_;
};

// Nagle left on in a server shows as the delayed-ACK stall signature; our own models set
// TCP_NODELAY and do not show it. Closed loop, one request in flight a connection: once a split
// reply's first part is read, the client has nothing to send until the rest comes, so only its
// delayed-ACK timer releases it. (In an open loop the client's next request carries the ACK, or,
// with gaps longer than the timer, the kernel acknowledges at once on the read, not being in
// "ping-pong" mode: a stall then ends early and does not gather at 40 ms.)
TEST_F(LoadE2eTest, ANagleStallIsNamedAndOurServerHasNone) {
  CannedResponder nagle("PING\r\n", "+PONG\r\n", 4);
  const pb::LoadResult stalled =
      Load(nagle.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nagle");
  EXPECT_EQ(stalled.failed(), 0u);
  EXPECT_TRUE(stalled.delayed_ack_stall()) << stalled.delayed_ack_stall_fraction() << "\n"
                                           << last_output_;
  // About one reply in four waited for the delayed ACK, and the median did not.
  EXPECT_GT(stalled.delayed_ack_stall_fraction(), 0.1) << last_output_;
  EXPECT_LT(stalled.latency().p50(), 0.004) << last_output_;
  EXPECT_NE(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;

  switchyard::testing::ServerProcess server("coroutine");
  const pb::LoadResult clean = Load(
      server.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nodelay");
  EXPECT_EQ(clean.failed(), 0u);
  EXPECT_FALSE(clean.delayed_ack_stall()) << clean.delayed_ack_stall_message();
  EXPECT_TRUE(clean.delayed_ack_stall_message().empty());
  EXPECT_EQ(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;
}

// A load generator that shares its CPU with a busy process waits for it, and lags its schedule for
// that reason alone: the result says how long its threads waited for the CPU, and a run flagged
// for lag says that other work held it (the machine, not the load generator's code).
TEST_F(LoadE2eTest, ACpuSharedWithABusyProcessShowsAsRunQueueWait) {
  RedisServer redis;
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof original, &original), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = CPU_SETSIZE - 1; cpu >= 0; --cpu) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  const pid_t spinner = fork();
  if (spinner == 0) {  // busy on that CPU for at most 10 s, killed sooner
    sched_setaffinity(0, sizeof one, &one);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
    }
    _exit(0);
  }
  // The load generator inherits this thread's CPU set.
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const pb::LoadResult result =
      Load(redis.port(), {"--rate", "2000", "-d", "1s", "--warmup", "200ms", "-c", "8"}, "shared");
  sched_setaffinity(0, sizeof original, &original);
  kill(spinner, SIGKILL);
  waitpid(spinner, nullptr, 0);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_GT(result.client_run_queue_wait_seconds(), 0.01) << last_output_;
  if (result.client_limited()) {
    EXPECT_NE(result.client_limited_reason().find("held by other work"), std::string::npos)
        << result.client_limited_reason();
  }
}

TEST_F(LoadE2eTest, AgainstOurServerWithEveryCommand) {
  switchyard::testing::ServerProcess server("coroutine");
  const pb::LoadResult result = Load(server.port(),
                                     {"-n", "2000", "--warmup", "0", "-c", "4", "-P", "8", "--mix",
                                      "get:4,set:4,echo:1,incr:1,incrby:1,mget:4:1,mset:4:1,ping:1,"
                                      "sy.cpu:5:1,sy.wait:50:1,sy.block:20:1",
                                      "--value-size", "8-2k", "--key-dist", "zipfian:0.9"},
                                     "ours");
  EXPECT_EQ(result.requests(), 2000u);
  EXPECT_EQ(result.errors(), 0u);  // every command of the mix is one the server knows
  EXPECT_EQ(result.failed(), 0u);
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
  EXPECT_EQ(result.requests(), 3000u);
  EXPECT_EQ(result.errors(), 0u);
  EXPECT_EQ(result.failed(), 0u);
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

TEST_F(LoadE2eTest, MergeOfTwoRunsIsExact) {
  RedisServer redis;
  const std::string a = TempFile("a.json"), b = TempFile("b.json"), merged = TempFile("m.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "--port", std::to_string(redis.port()), "-n", "1500", "--warmup",
                       "0", "-c", "3", "-q", "--json", a},
                      &output),
            0)
      << output;
  ASSERT_EQ(RunBinary({"load", "--port", std::to_string(redis.port()), "--rate", "1000", "-d",
                       "500ms", "--warmup", "0", "-c", "2", "-q", "--json", b},
                      &output),
            0)
      << output;
  ASSERT_EQ(RunBinary({"load", "merge", a, b, "--json", merged}, &output), 0) << output;
  EXPECT_NE(output.find("merged from 2 load-generator processes"), std::string::npos) << output;
  const pb::LoadResult ra = ReadResultFile(a), rb = ReadResultFile(b), rm = ReadResultFile(merged);
  EXPECT_EQ(rm.requests(), ra.requests() + rb.requests());
  EXPECT_EQ(rm.processes(), 2u);
  Histogram expected = FromProto(ra.histogram());
  expected.Merge(FromProto(rb.histogram()));
  const Histogram got = FromProto(rm.histogram());
  EXPECT_EQ(got.Buckets(), expected.Buckets());
  EXPECT_EQ(got.max(), expected.max());
  EXPECT_DOUBLE_EQ(rm.latency().p99(), static_cast<double>(expected.ValueAtPercentile(99)) / 1e9);
  // The open-loop run's reply pickup survives the merge (the closed-loop one has none).
  EXPECT_GT(rb.histogram_reply_pickup().total(), 0u);
  EXPECT_EQ(FromProto(rm.histogram_reply_pickup()).Buckets(),
            FromProto(rb.histogram_reply_pickup()).Buckets());
  EXPECT_DOUBLE_EQ(rm.reply_pickup().max(), rb.reply_pickup().max());
  // A merge keeps the noisiest machine's steal.
  EXPECT_DOUBLE_EQ(rm.machine_steal_fraction(),
                   std::max(ra.machine_steal_fraction(), rb.machine_steal_fraction()));
}

TEST_F(LoadE2eTest, LiveMetricsDuringTheRun) {
  RedisServer redis;
  const std::uint16_t metrics_port = FreeLoopbackPort();
  std::thread load([&] {
    Load(redis.port(),
         {"--rate", "500", "-d", "2500ms", "--warmup", "0", "--metrics-port",
          std::to_string(metrics_port)},
         "metrics");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));
  std::string scrape;
  try {
    scrape = switchyard::testing::ScrapeMetrics(metrics_port);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  load.join();
  using switchyard::testing::MetricValue;
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_requests_total{outcome=\"ok\"}"), 0) << scrape;
  EXPECT_EQ(MetricValue(scrape, "switchyard_loadgen_target_rate"), 500) << scrape;
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_latency_seconds_count"), 0) << scrape;
  EXPECT_GE(MetricValue(scrape, "switchyard_loadgen_schedule_lag_seconds"), 0) << scrape;
}

// Reads a sweep's JSON (a SweepResult, not a LoadResult).
pb::SweepResult ReadSweep(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  pb::SweepResult sweep;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &sweep).ok()) << text.str();
  return sweep;
}

// Every run a sweep made is kept in rising order of rate, and each is one of its decisions' runs.
void ExpectRunsMatchDecisions(const pb::SweepResult& sweep) {
  std::map<double, int> runs_at;
  for (int i = 0; i < sweep.steps_size(); ++i) {
    ++runs_at[sweep.steps(i).target_rate()];
    if (i > 0) {
      EXPECT_GE(sweep.steps(i).target_rate(), sweep.steps(i - 1).target_rate());
    }
  }
  for (const auto& decision : sweep.decisions()) {
    EXPECT_EQ(runs_at[decision.rate()],
              decision.observed_seconds_size() + static_cast<int>(decision.client_limited_runs()))
        << decision.rate();
  }
}

TEST_F(LoadE2eTest, SweepStepsUpToThePeakAndStopsAtTheSlo) {
  RedisServer redis;
  const std::string port = std::to_string(redis.port());
  // An SLO nothing can meet: the first step misses it, the climb stops there, the rate is halved
  // four times looking for a knee below it, and no rate qualifies.
  const std::string strict = TempFile("strict.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "--port", port, "--sweep", "--sweep-steps", "4", "--slo", "99:1us",
                       "-d", "300ms", "--warmup", "0", "-c", "4", "-q", "--json", strict},
                      &output),
            0)
      << output;
  const pb::SweepResult missed = ReadSweep(strict);
  EXPECT_GT(missed.peak_throughput(), 0);
  ExpectRunsMatchDecisions(missed);
  // On a busy machine a step may instead stay limited by the client, which ends the sweep early:
  // either way no rate is counted as meeting the objective.
  EXPECT_EQ(missed.highest_rate_meeting_slo(), 0);
  ASSERT_GE(missed.decisions_size(), 1) << output;
  for (int i = 0; i < missed.decisions_size(); ++i) {
    EXPECT_NEAR(missed.decisions(i).rate(), missed.peak_throughput() / 4 / (1 << i), 1) << i;
    EXPECT_EQ(missed.decisions(i).phase(), i == 0 ? "climb" : "halving");
  }
  if (missed.decisions(missed.decisions_size() - 1).verdict() != "client-limited") {
    EXPECT_EQ(missed.decisions_size(), 5) << output;
  }
  // Under a sanitizer the load generator itself may lag every run: then no run is the server's.
  EXPECT_TRUE(output.find("missed") != std::string::npos ||
              output.find("CLIENT-LIMITED") != std::string::npos)
      << output;

  // A lenient SLO with every deciding step run twice: the climb rises by half the peak and meets
  // it all the way, so the knee is "at least" the peak, and the last rate is confirmed.
  const std::string lenient = TempFile("lenient.json");
  ASSERT_EQ(RunBinary({"load", "--port", port, "--sweep", "--sweep-steps", "2", "--sweep-runs", "2",
                       "--slo", "99:5s", "-d", "300ms", "--warmup", "0", "-c", "4", "-q", "--json",
                       lenient},
                      &output),
            0)
      << output;
  const pb::SweepResult swept = ReadSweep(lenient);
  ExpectRunsMatchDecisions(swept);
  EXPECT_EQ(swept.runs_per_step(), 2u);
  ASSERT_GE(swept.decisions_size(), 1) << output;
  EXPECT_NEAR(swept.decisions(0).rate(), swept.peak_throughput() / 2, 1);
  if (swept.decisions_size() == 2 && swept.decisions(1).verdict() == "met") {
    EXPECT_NEAR(swept.highest_rate_meeting_slo(), swept.peak_throughput(), 1);
    EXPECT_EQ(swept.decisions(1).observed_seconds_size(), 2) << "the knee's rate is confirmed";
    EXPECT_TRUE(swept.knee_is_lower_bound());
    EXPECT_NE(output.find("the knee is at least"), std::string::npos) << output;
  }
  EXPECT_EQ(swept.lowest_rate_missing_slo(), 0) << "nothing misses a 5 s objective";
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

TEST_F(LoadE2eTest, BadInputGetsAOneLineError) {
  std::string output;
  const std::uint16_t closed = FreeLoopbackPort();
  EXPECT_EQ(RunBinary({"load", "--port", std::to_string(closed), "-d", "1s"}, &output), 1);
  EXPECT_NE(output.find("cannot connect to 127.0.0.1:" + std::to_string(closed)), std::string::npos)
      << output;
  EXPECT_EQ(RunBinary({"load", "--mix", "get:90,frobnicate:10"}, &output), 2);
  EXPECT_NE(output.find("--mix: 'frobnicate:10': unknown command"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "--mix", "mget:1001"}, &output), 2);
  EXPECT_NE(
      output.find("--mix: 'mget:1001': mget needs its number of keys a request, from 1 to 1000"),
      std::string::npos)
      << output;
  EXPECT_EQ(RunBinary({"load", "--rate", "fast"}, &output), 2);
  EXPECT_EQ(RunBinary({"load", "-d", "10 parsecs"}, &output), 2);
  EXPECT_EQ(RunBinary({"load", "--spin", "1s"}, &output), 2);
  EXPECT_NE(output.find("--spin: at most 100ms"), std::string::npos) << output;
  const std::string junk = TempFile("junk.json");
  {
    std::FILE* file = std::fopen(junk.c_str(), "w");
    std::fputs("{\"nope\": 1}", file);
    std::fclose(file);
  }
  EXPECT_EQ(RunBinary({"load", "merge", junk}, &output), 1);
  EXPECT_NE(output.find("is not a load result"), std::string::npos) << output;
}

}  // namespace
}  // namespace switchyard::loadgen
