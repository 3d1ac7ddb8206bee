#include "servers/common/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <stdexcept>
#include <thread>

namespace switchyard {

namespace {

// Sizes read like redis.conf and memtier: "512", "64k", "1m", "1gb", "256MiB" (binary multiples).
void AddSizeFlag(CLI::App& app, const std::string& name, std::size_t& value,
                 const std::string& help) {
  app.add_option(name, value, help)
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false))
      ->default_str(std::to_string(value));
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerConfig& config, const std::vector<std::string>& models) {
  app.add_option("--model", config.model, "Concurrency model to serve with (--list-models)")
      ->required()
      ->check(CLI::IsMember(models));
  app.add_option("--bind", config.bind,
                 "Address to listen on, for the service and the metrics. Loopback by default: "
                 "bind another address only on a network you trust (there is no authentication)")
      ->capture_default_str();
  app.add_option("--port", config.port, "Service port (0 picks a free one, printed when ready)")
      ->capture_default_str();
  app.add_option("--metrics-port", config.metrics_port,
                 "Prometheus /metrics port on the bind address (0 picks a free one)")
      ->capture_default_str();
  // The help of --threads and --workers names the models each applies to (not the model list).
  app.add_option("--threads", config.threads,
                 "Event-loop threads (fiber, coroutine); default: number of cores")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--workers", config.workers,
                 "Processes (prefork, default 256) or pool threads (thread_pool, default 4 a "
                 "core). A prefork worker serves one connection at a time: when every worker is "
                 "busy, new connections wait in the listen backlog until one is free")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--stack-kb", config.stack_kb,
                 "Stack of each thread or fiber in KiB; default: the model's own (threads: the "
                 "system's, usually 8192; fibers: 128)")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 20));
  app.add_option("--max-clients", config.max_clients,
                 "Connections served at once; beyond it: -ERR max number of clients reached. "
                 "prefork serves at most --workers at once (more wait in the backlog); with "
                 "--max-clients below --workers, the spare workers refuse the extra clients")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  AddSizeFlag(app, "--max-bulk-bytes", config.max_bulk_bytes,
              "Largest bulk string in a request (Redis proto-max-bulk-len)");
  AddSizeFlag(app, "--max-inline-bytes", config.max_inline_bytes,
              "Longest inline request or length line");
  AddSizeFlag(app, "--query-buffer-bytes", config.query_buffer_bytes,
              "Unparsed input held for one client; over it the client is disconnected");
  AddSizeFlag(app, "--output-buffer-bytes", config.output_buffer_bytes,
              "Replies held for one client; over it the client is disconnected (0: no limit)");
  AddSizeFlag(app, "--store-bytes", config.store_bytes,
              "Shared memory for the store; a write that does not fit gets -OOM");
  app.add_option(
         "--shutdown-timeout", config.shutdown_timeout,
         "Seconds a graceful stop (SIGTERM, SIGINT) waits for connections to receive the "
         "replies they are owed; those still open then are dropped and the exit status is 1 "
         "(Redis's shutdown-timeout)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_flag("--quiet", config.quiet,
               "Do not log connection errors (a failure that closes a connection is still logged)");
  app.add_flag("--no-request-metrics{false}", config.request_metrics,
               "Neither count nor time each request (the endpoint still serves the OS figures); "
               "for measuring what per-request metrics cost");
}

void ValidateServerConfig(ServerConfig& config) {
  if (config.threads == 0) config.threads = std::max(1u, std::thread::hardware_concurrency());
  if (config.port != 0 && config.port == config.metrics_port) {
    throw std::invalid_argument("--port and --metrics-port must differ (both are " +
                                std::to_string(config.port) + ")");
  }
  if (config.max_bulk_bytes < 1) throw std::invalid_argument("--max-bulk-bytes must be at least 1");
  if (config.max_inline_bytes < 64) {
    throw std::invalid_argument("--max-inline-bytes must be at least 64");
  }
  if (config.query_buffer_bytes < config.max_inline_bytes) {
    throw std::invalid_argument("--query-buffer-bytes must be at least --max-inline-bytes (" +
                                std::to_string(config.max_inline_bytes) + ")");
  }
  if (config.store_bytes < (std::size_t{1} << 20)) {
    throw std::invalid_argument("--store-bytes must be at least 1MiB");
  }
}

}  // namespace switchyard
