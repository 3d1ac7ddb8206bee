// The connections a server holds open, and its graceful stop: one piece every model shares, so
// they all admit, fail, close and stop the same way. A model keeps only how it waits: for a
// socket, for the last connection to close, for the drain deadline.
//
// The graceful stop, on the first SIGINT/SIGTERM: no connection is admitted any more, and every
// open one stops reading (shutdown(SHUT_RD)), so each answers what it has already received, then
// reads end-of-file and closes. Connections that have not closed by the drain deadline
// (--shutdown-timeout: a client that never reads its replies, a request that blocks longer) are
// abandoned, and the server exits 1. Otherwise it exits 0.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include "servers/common/server_context.h"

namespace switchyard {

class OpenConnections {
 public:
  using Clock = std::chrono::steady_clock;

  explicit OpenConnections(ServerContext& context) : context_(context) {}
  OpenConnections(const OpenConnections&) = delete;
  OpenConnections& operator=(const OpenConnections&) = delete;

  // An accepted socket: true when it is admitted (counted active until Close). False when
  // --max-clients are open, across every process of the server, or the server is stopping: the
  // client has then been sent Redis's error (counted rejected), and the caller closes the socket
  // itself, without Close().
  bool Admit(int fd);

  // Ends an admitted connection: stops sending (the client reads end-of-file after the last
  // reply), closes the socket and counts it closed. The descriptor is closed under the same lock
  // StopReading takes, so a stop never shuts down a descriptor number reused since; a model whose
  // socket object owns the descriptor hands it over (Asio: socket.release()).
  void Close(int fd);

  // An exception escaped the handling of connection `fd` (out of memory, say): counted in
  // switchyard_connections_failed_total and logged. The model then closes that connection alone
  // and serves every other.
  void Failed(int fd, const std::exception& error);

  // The whole life of a connection in a model where one call serves it (a thread or process
  // blocking on its socket): runs `serve`, catches what escapes it (Failed), then Close(fd).
  template <typename Body>
  void Serve(int fd, Body&& serve) {
    try {
      serve();
    } catch (const std::exception& error) {
      Failed(fd, error);
    }
    Close(fd);
  }

  // Starts the graceful stop (above) and its drain deadline. `drained`, if given, runs once, on
  // the thread that closes the last connection (or here, when none is open): a model waiting in
  // an event loop posts itself a wake-up from it.
  void StopReading(std::function<void()> drained = nullptr);
  bool stopping() const;
  Clock::time_point deadline() const;
  std::size_t open() const;

  // For models whose waiting is a thread's: blocks until every connection has closed or the
  // drain deadline has passed. True when every connection closed.
  bool WaitUntilDrained();

  // The stop's outcome, once the model has waited: 0 when every connection closed in time.
  // Otherwise it logs how many were left and exits with status 1 at once (std::_Exit): their
  // threads, fibers or coroutines still use the model's objects, so no orderly return exists.
  int Finish();

 private:
  ServerContext& context_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable all_closed_;
  std::unordered_set<int> open_;
  bool stopping_ = false;
  Clock::time_point deadline_;
  std::function<void()> drained_;
};

// When a graceful stop that starts now gives up: --shutdown-timeout from now.
std::chrono::steady_clock::time_point DrainDeadline(const ServerConfig& config);

// How a stop that ran out of time ends, for every model: logs "switchyard: N <what> after Ts;
// stopping anyway" (what: "connections still open", say) and returns the exit status, 1.
int DrainTimedOut(std::size_t left, std::string_view what, const ServerConfig& config);

}  // namespace switchyard
