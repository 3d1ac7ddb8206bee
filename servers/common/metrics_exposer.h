// Starting a Prometheus exposer with a clear error, and stopping it without civetweb's wait.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Exposer;
}

namespace switchyard {

// Serves /metrics on `bind`:`port` (an IPv4 or IPv6 address, or a host name; port 0 picks a free
// one) with `threads` threads. Throws std::runtime_error("cannot serve metrics on ADDRESS: why").
std::unique_ptr<prometheus::Exposer> StartExposer(const std::string& bind, std::uint16_t port,
                                                  std::size_t threads);

// Destroys `exposer`, which listens on `bind` (the address it was given: IPv4, IPv6 or a host
// name; an unspecified address is reached on loopback), and returns as soon as its threads end.
// civetweb 1.15 (Debian 12's, under prometheus-cpp) notices that it is stopping only when its
// listening thread's poll() returns, on a connection or after a 2 s quantum
// (civetweb/civetweb#1163, fixed in 1.16), so every server and load generator took up to 2 s to
// exit. Connecting to the port while the exposer stops makes that poll return at once.
void StopExposer(std::unique_ptr<prometheus::Exposer>& exposer, const std::string& bind);

}  // namespace switchyard
