// What the load generator's end-to-end tests share: a private redis-server, a fixture that runs
// the real `switchyard load` binary and reads its JSON result, a RESP responder with canned
// replies for what no real server answers, and finding the running load generator by its flags.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loadgen/result.h"
#include "proto/loadgen.pb.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {

// A private redis-server: no persistence, loopback only, killed at the end.
class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  std::uint16_t port() const { return port_; }
  int pid() const { return pid_; }

 private:
  std::uint16_t port_;
  int pid_ = -1;
};

// Runs the real `switchyard load` with one protocol (resp by default) and reads its results.
class LoadE2eTest : public ::testing::Test {
 protected:
  explicit LoadE2eTest(std::string protocol = "resp") : protocol_(std::move(protocol)) {}
  ~LoadE2eTest() override;

  // Where a temporary file of this test goes (TempFile also removes it at the end).
  static std::string TempPath(const std::string& name);
  std::string TempFile(const std::string& name);

  // Runs `switchyard load` and reads its JSON result (kept at last_json_); fails the test on a
  // non-zero exit.
  pb::LoadResult Load(std::uint16_t port, std::vector<std::string> flags, const std::string& name);

  // Runs `workers` load-generator processes side by side as one run (--workers, --worker-index,
  // one --start-at `lead` from now) and reads their results, in index order; their JSON files are
  // at worker_json_. Fails the test on a non-zero exit.
  std::vector<pb::LoadResult> LoadWorkers(std::uint16_t port, std::vector<std::string> flags,
                                          unsigned workers, const std::string& name,
                                          std::chrono::milliseconds lead);

  // Open loop at 1000/s for 0.5 s on 3 connections, sleeping until each send is due (--spin 0),
  // then polling all the time (--busy-poll): the same schedule either way.
  void ExpectSleepingAndBusyPollingKeepTheSchedule(std::uint16_t port);
  // A run at 1000/s for 3 s on 4 connections, during which process `pid` (the server) is stopped
  // for 0.3 s from 1 s in.
  pb::LoadResult LoadThroughAStall(std::uint16_t port, int pid);
  // 2000 requests of every command the mix knows (simulated work included), values of 8 bytes to
  // 2 KiB, zipfian keys, 8 in flight on each of 4 connections: every one answered, none an error.
  void LoadEveryCommand(std::uint16_t port);
  // What the live endpoint says 1.8 s into a run at 500/s for 2.5 s.
  std::string ScrapeDuringARun(std::uint16_t port);

  std::string last_output_, last_json_;
  std::vector<std::string> worker_json_, worker_output_;

 private:
  const std::string protocol_;
  std::vector<std::string> files_;
};

// `requests` were sent and each answered, none an error, none lost; the histogram holds them all
// and its percentiles are in order.
void ExpectEveryRequestAnswered(const pb::LoadResult& result, std::uint64_t requests);

// The process running `switchyard load` with `argument` on its command line, or -1.
int FindLoadProcess(const std::string& argument);

// A RESP responder that answers every request naming `command` (as the load generator writes it,
// "PING\r\n" for PING) with `reply`, whatever the request says: for replies no real server gives.
// With `split_every` N > 0 it behaves as servers written before TCP_NODELAY was the rule: Nagle's
// algorithm is left on, and every Nth reply on a connection is written in two small writes (all
// but its last two bytes, then "\r\n"). The second write finds the first unacknowledged and waits
// for the client's delayed ACK, about 40 ms; the other replies go out at once, so the median stays
// fast.
class CannedResponder {
 public:
  CannedResponder(std::string command, std::string reply, std::uint64_t split_every = 0);
  ~CannedResponder();
  std::uint16_t port() const { return port_; }

 private:
  struct Peer {
    int fd;
    std::string input;
    std::uint64_t answered = 0;
  };

  // Bounded in time and rounds: 20 ms a wait, and at most a minute in all, whatever the test does.
  void Serve();
  // False once the peer has closed.
  bool Answer(Peer& peer);
  static void Write(int fd, std::string_view text);

  const std::string command_, reply_;
  const std::uint64_t split_every_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<Peer> peers_;
  std::thread thread_;
};

}  // namespace switchyard::loadgen
