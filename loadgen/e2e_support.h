// What the load generator's end-to-end tests share: a private redis-server, a fixture that runs
// the real `switchyard load` binary and reads its JSON result, a RESP responder with canned
// replies for what no real server answers, and finding the running load generator by its flags.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
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
    const int code = switchyard::testing::RunBinary(args, &output);
    EXPECT_EQ(code, 0) << output;
    last_output_ = output;
    return ReadResultFile(json);
  }
  std::string last_output_;

 private:
  std::vector<std::string> files_;
};

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
