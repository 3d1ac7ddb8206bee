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

#include "tests/server_process.h"

namespace switchyard::loadgen {

using switchyard::testing::Client;
using switchyard::testing::FreeLoopbackPort;

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
