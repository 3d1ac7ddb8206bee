#include "servers/common/open_connections.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "servers/common/net.h"

namespace switchyard {

namespace {

// To a client accepted in the instant between the stop and the listening socket's close.
constexpr std::string_view kShuttingDownReply = "-ERR the server is shutting down\r\n";

}  // namespace

bool OpenConnections::Admit(int fd) {
  std::unique_lock lock(mutex_);
  const bool stopping = stopping_;
  if (stopping) {
    context_.metrics.ConnectionRejected();
  } else if (context_.metrics.TryAdmitConnection(context_.config.max_clients)) {
    open_.insert(fd);
    return true;
  }
  lock.unlock();
  SendAll(fd, stopping ? kShuttingDownReply : kMaxClientsReply);
  return false;
}

void OpenConnections::Close(int fd) {
  shutdown(fd, SHUT_WR);
  context_.metrics.ConnectionClosed();
  std::function<void()> drained;
  {
    std::lock_guard lock(mutex_);
    open_.erase(fd);
    close(fd);
    if (!open_.empty() || !stopping_) return;
    all_closed_.notify_all();
    drained.swap(drained_);
  }
  if (drained) drained();
}

void OpenConnections::Failed(int fd, const std::exception& error) {
  context_.metrics.ConnectionFailed();
  // Logged even with --quiet: this is a fault in the server, not a client going away.
  std::cerr << "switchyard: a connection failed and is closed (descriptor " << fd
            << "): " << error.what() << "\n";
}

void OpenConnections::StopReading(std::function<void()> drained) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    deadline_ = DrainDeadline(context_.config);
    for (int fd : open_) shutdown(fd, SHUT_RD);
    if (!open_.empty()) {
      drained_ = std::move(drained);
      return;
    }
  }
  if (drained) drained();
}

bool OpenConnections::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

OpenConnections::Clock::time_point OpenConnections::deadline() const {
  std::lock_guard lock(mutex_);
  return deadline_;
}

std::size_t OpenConnections::open() const {
  std::lock_guard lock(mutex_);
  return open_.size();
}

bool OpenConnections::WaitUntilDrained() {
  std::unique_lock lock(mutex_);
  return all_closed_.wait_until(lock, deadline_, [this] { return open_.empty(); });
}

int OpenConnections::Finish() {
  const std::size_t left = open();
  if (left == 0) return 0;
  const int status = DrainTimedOut(left, "connections still open", context_.config);
  std::cout.flush();
  std::_Exit(status);
}

std::chrono::steady_clock::time_point DrainDeadline(const ServerConfig& config) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(config.shutdown_timeout));
}

int DrainTimedOut(std::size_t left, std::string_view what, const ServerConfig& config) {
  std::cerr << "switchyard: " << left << " " << what << " after " << config.shutdown_timeout
            << "s; stopping anyway\n";
  return 1;
}

}  // namespace switchyard
