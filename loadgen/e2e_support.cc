// The end-to-end tests' shared pieces (e2e_support.h).
#include "loadgen/e2e_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tests/server_process.h"

namespace switchyard::loadgen {

using switchyard::testing::Client;
using switchyard::testing::FreeLoopbackPort;
using switchyard::testing::RunBinary;

RedisServer::RedisServer() : port_(FreeLoopbackPort()) {
  pid_ = fork();
  if (pid_ == 0) {
    const int null = open("/dev/null", O_WRONLY);  // its start-up banner is noise in test logs
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    const std::string port = std::to_string(port_);
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save",
           "", "--appendonly", "no", "--loglevel", "warning", nullptr);
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

RedisServer::~RedisServer() {
  kill(pid_, SIGCONT);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

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

LoadE2eTest::~LoadE2eTest() {
  for (const auto& path : files_) std::remove(path.c_str());
}

std::string LoadE2eTest::TempPath(const std::string& name) {
  return ::testing::TempDir() + "loadgen_" + std::to_string(getpid()) + "_" + name;
}

std::string LoadE2eTest::TempFile(const std::string& name) {
  files_.push_back(TempPath(name));
  return files_.back();
}

pb::LoadResult LoadE2eTest::Load(std::uint16_t port, std::vector<std::string> flags,
                                 const std::string& name) {
  last_json_ = TempFile(name + ".json");
  std::vector<std::string> args = {
      "load", "--protocol", protocol_, "--port", std::to_string(port), "--json", last_json_, "-q"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::string output;
  const int code = RunBinary(args, &output);
  EXPECT_EQ(code, 0) << output;
  last_output_ = output;
  return ReadResultFile(last_json_);
}

std::vector<pb::LoadResult> LoadE2eTest::LoadWorkers(std::uint16_t port,
                                                     std::vector<std::string> flags,
                                                     unsigned workers, const std::string& name,
                                                     std::chrono::milliseconds lead) {
  const std::string start_at = FormatUtc(UnixNowNs() + std::chrono::nanoseconds(lead).count());
  worker_json_.assign(workers, "");
  worker_output_.assign(workers, "");
  std::vector<int> codes(workers, -1);
  std::vector<std::thread> running;
  for (unsigned i = 0; i < workers; ++i) {
    worker_json_[i] = TempFile(name + "-" + std::to_string(i) + ".json");
    std::vector<std::string> args = {
        "load",           "--protocol",      protocol_,    "--port",    std::to_string(port),
        "--json",         worker_json_[i],   "-q",         "--workers", std::to_string(workers),
        "--worker-index", std::to_string(i), "--start-at", start_at};
    args.insert(args.end(), flags.begin(), flags.end());
    running.emplace_back(
        [this, i, args, &codes] { codes[i] = RunBinary(args, &worker_output_[i]); });
  }
  for (auto& thread : running) thread.join();
  std::vector<pb::LoadResult> results;
  for (unsigned i = 0; i < workers; ++i) {
    EXPECT_EQ(codes[i], 0) << "worker " << i << ": " << worker_output_[i];
    results.push_back(ReadResultFile(worker_json_[i]));
  }
  return results;
}

void LoadE2eTest::ExpectSleepingAndBusyPollingKeepTheSchedule(std::uint16_t port) {
  const pb::LoadResult slept = Load(
      port, {"--rate", "1000", "-d", "500ms", "--warmup", "0", "-c", "3", "--spin", "0"}, "slept");
  EXPECT_NEAR(static_cast<double>(slept.requests()), 500, 3);
  EXPECT_EQ(slept.failed(), 0u);
  EXPECT_EQ(slept.spec().spin_seconds(), 0);
  EXPECT_EQ(slept.client_spin_seconds(), 0);
  const pb::LoadResult spun = Load(
      port, {"--rate", "1000", "-d", "500ms", "--warmup", "0", "-c", "3", "--busy-poll"}, "busy");
  EXPECT_NEAR(static_cast<double>(spun.requests()), 500, 3);
  EXPECT_EQ(spun.failed(), 0u);
  EXPECT_TRUE(spun.spec().busy_poll());
}

pb::LoadResult LoadE2eTest::LoadThroughAStall(std::uint16_t port, int pid) {
  pb::LoadResult result;
  std::thread load([&] {
    result = Load(port, {"--rate", "1000", "-d", "3s", "--warmup", "0", "-c", "4"}, "stall");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  kill(pid, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGCONT);
  load.join();
  return result;
}

void LoadE2eTest::LoadEveryCommand(std::uint16_t port) {
  const pb::LoadResult result =
      Load(port,
           {"-n", "2000", "--warmup", "0", "-c", "4", "-P", "8", "--mix",
            "get:4,set:4,echo:1,incr:1,incrby:1,mget:4:1,mset:4:1,ping:1,sy.cpu:5:1,sy.wait:50:1,"
            "sy.block:20:1",
            "--value-size", "8-2k", "--key-dist", "zipfian:0.9"},
           "every_command");
  ExpectEveryRequestAnswered(result, 2000);
}

std::string LoadE2eTest::ScrapeDuringARun(std::uint16_t port) {
  const std::uint16_t metrics_port = FreeLoopbackPort();
  std::thread load([&] {
    Load(port,
         {"--rate", "500", "-d", "2500ms", "--warmup", "0", "--metrics-port",
          std::to_string(metrics_port)},
         "metrics");
  });
  // Scraped until the run has answered something, while it still runs: a loaded machine (a
  // sanitizer build among other builds) can take most of a second just to start the generator.
  std::string scrape, error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2300);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      scrape = switchyard::testing::ScrapeMetrics(metrics_port);
      error.clear();
      if (switchyard::testing::MetricValue(
              scrape, "switchyard_loadgen_requests_total{worker=\"0\",outcome=\"ok\"}") > 0)
        break;
    } catch (const std::exception& e) {
      error = e.what();  // not serving yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!error.empty()) ADD_FAILURE() << error;
  load.join();
  return scrape;
}

void ExpectEveryRequestAnswered(const pb::LoadResult& result, std::uint64_t requests) {
  EXPECT_EQ(result.requests(), requests);
  EXPECT_EQ(result.errors(), 0u);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_EQ(result.connections_lost(), 0u);
  EXPECT_EQ(result.histogram().total(), requests);
  EXPECT_GT(result.throughput(), 0);
  EXPECT_GT(result.latency().p50(), 0);
  EXPECT_LE(result.latency().p50(), result.latency().p99());
  EXPECT_LE(result.latency().p99(), result.latency().max());
}

CannedResponder::CannedResponder(std::string command, std::string reply, std::uint64_t split_every)
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

CannedResponder::~CannedResponder() {
  stop_ = true;
  thread_.join();
  for (const Peer& peer : peers_) close(peer.fd);
  close(listen_fd_);
}

void CannedResponder::Serve() {
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

bool CannedResponder::Answer(Peer& peer) {
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

void CannedResponder::Write(int fd, std::string_view text) {
  [[maybe_unused]] const ssize_t written = write(fd, text.data(), text.size());
}

}  // namespace switchyard::loadgen
