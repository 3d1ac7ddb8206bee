#include "servers/common/metrics_exposer.h"

#include <netdb.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace switchyard {
namespace {

// Where a client reaches a socket bound to `bind`.
std::string Reachable(const std::string& bind) {
  if (bind.empty() || bind == "0.0.0.0") return "127.0.0.1";
  if (bind == "::") return "::1";
  return bind;
}

bool IsIpv6(const std::string& bind) { return bind.find(':') != std::string::npos; }

// `bind`:`port` as civetweb and URLs write it: an IPv6 address in brackets.
std::string Address(const std::string& bind, std::uint16_t port) {
  return (IsIpv6(bind) ? "[" + bind + "]" : bind) + ":" + std::to_string(port);
}

// Connects to the listening port, and closes at once, until `stopped`: a connection made before
// the exposer sets its stop flag is served as an empty request and only the next one ends the
// wait. Bounded by civetweb's own quantum, which ends the wait without us.
void Knock(const std::string& bind, std::uint16_t port, const std::atomic<bool>& stopped) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(Reachable(bind).c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    return;  // civetweb's quantum ends the wait, as it did before
  }
  constexpr auto kPause = std::chrono::milliseconds(5);
  constexpr int kMostTries = 2000 / 5;  // the quantum's length in pauses
  for (int tries = 0; tries < kMostTries && !stopped.load(); ++tries) {
    const int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
    if (fd < 0) break;
    (void)connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
    std::this_thread::sleep_for(kPause);
  }
  freeaddrinfo(found);
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(const std::string& bind, std::uint16_t port, std::size_t threads)
    : bind_(bind) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(Address(bind, port), threads);
  } catch (const std::exception& e) {
    // civetweb's own message blames the port; on Debian 12 an IPv6 address fails for another
    // reason, which it does not say: its civetweb is built without IPv6.
    throw std::runtime_error("cannot serve metrics on " + Address(bind, port) + ": " + e.what() +
                             (IsIpv6(bind) ? " (an IPv6 address needs a civetweb built with IPv6, "
                                             "and Debian 12's is not: bind an IPv4 address)"
                                           : ""));
  }
  const auto ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? port : static_cast<std::uint16_t>(ports.front());
}

MetricsEndpoint::~MetricsEndpoint() {
  std::atomic<bool> stopped{false};
  std::thread knocker(Knock, bind_, port_, std::cref(stopped));
  exposer_.reset();
  stopped = true;
  knocker.join();
}

void MetricsEndpoint::Register(const std::shared_ptr<prometheus::Collectable>& collectable) {
  exposer_->RegisterCollectable(collectable);
}

std::string MetricsEndpoint::Url() const { return "http://" + Address(bind_, port_) + "/metrics"; }

}  // namespace switchyard
