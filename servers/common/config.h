// Server configuration: the flags every model accepts (DESIGN.md, "Flags every model accepts").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace switchyard {

struct ServerConfig {
  std::string model;
  std::string bind = "127.0.0.1";  // loopback unless told otherwise
  std::uint16_t port = 6380;
  std::uint16_t metrics_port = 9180;
  unsigned threads = 0;      // event-loop threads; 0 = number of cores
  unsigned workers = 0;      // processes or pool threads; 0 = the model's default
  std::size_t stack_kb = 0;  // stack of each thread or fiber; 0 = the model's own default
  std::size_t max_clients = 10000;
  std::size_t max_bulk_bytes = std::size_t{512} << 20;
  std::size_t max_inline_bytes = std::size_t{64} << 10;
  std::size_t query_buffer_bytes = std::size_t{1} << 30;
  std::size_t output_buffer_bytes = 0;  // 0 = no limit
  std::size_t store_bytes = std::size_t{256} << 20;
  // How long a graceful stop waits for connections to finish what they owe (Redis's
  // shutdown-timeout), in seconds.
  double shutdown_timeout = 10;
  bool quiet = false;  // no per-connection log lines
  // Count and time every request. Off only to measure what that costs (README, "Metrics").
  bool request_metrics = true;
};

// Adds the server flags to `app` (a CLI11 subcommand), with their defaults and checks. `models` are
// the names --model accepts: the registry's (servers/models.h), which this folder may not include.
void AddServerFlags(CLI::App& app, ServerConfig& config, const std::vector<std::string>& models);

// Checks what CLI11 cannot check flag by flag. Throws std::invalid_argument with a one-line
// message naming the flag.
void ValidateServerConfig(ServerConfig& config);

}  // namespace switchyard
