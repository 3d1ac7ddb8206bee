// Stopping a Prometheus exposer without civetweb's wait.
#pragma once

#include <memory>
#include <string>

namespace prometheus {
class Exposer;
}

namespace switchyard {

// Destroys `exposer`, which listens on `bind` (the address it was given: IPv4, IPv6 or a host
// name; an unspecified address is reached on loopback), and returns as soon as its threads end.
// civetweb 1.15 (Debian 12's, under prometheus-cpp) notices that it is stopping only when its
// listening thread's poll() returns, on a connection or after a 2 s quantum
// (civetweb/civetweb#1163, fixed in 1.16), so every server and load generator took up to 2 s to
// exit. Connecting to the port while the exposer stops makes that poll return at once.
void StopExposer(std::unique_ptr<prometheus::Exposer>& exposer, const std::string& bind);

}  // namespace switchyard
