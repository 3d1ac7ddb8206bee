// The /metrics endpoint of a server or a load generator: prometheus-cpp's Exposer, started with a
// clear error and stopped without civetweb's wait.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace switchyard {

class MetricsEndpoint {
 public:
  // Serves /metrics on `bind`:`port` (an IPv4 or IPv6 address, or a host name; port 0 picks a free
  // one) with `threads` threads. Throws std::runtime_error("cannot serve metrics on ADDRESS: why").
  MetricsEndpoint(const std::string& bind, std::uint16_t port, std::size_t threads);

  // Returns as soon as the exposer's threads end. civetweb 1.15 (Debian 12's, under
  // prometheus-cpp) notices that it is stopping only when its listening thread's poll() returns,
  // on a connection or after a 2 s quantum (civetweb/civetweb#1163, fixed in 1.16), so every
  // server and load generator took up to 2 s to exit. Connecting to the port while the exposer
  // stops makes that poll return at once.
  ~MetricsEndpoint();

  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  void Register(const std::shared_ptr<prometheus::Collectable>& collectable);
  std::uint16_t port() const { return port_; }
  std::string Url() const;  // http://ADDRESS:PORT/metrics

 private:
  std::string bind_;
  std::uint16_t port_ = 0;  // the one it listens on
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace switchyard
