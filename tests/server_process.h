// Test helpers: start the real switchyard binary on free ports, talk to it over real sockets.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace switchyard::testing {

// The model name that starts Debian's redis-server instead (one database, no persistence), so a
// suite can hold our models to the same expectations as Redis itself.
inline constexpr char kRedisServer[] = "redis-server";

// How a test wants its server started, beyond the flags.
struct ServerOptions {
  std::vector<std::string> environment;  // "NAME=value", added to the server's environment
  bool capture_stderr = false;           // kept for stderr_text(), not shown with the test's
};

// A `switchyard serve` child process, started with --port 0 --metrics-port 0 and parsed from its
// "switchyard ready:" line; or, for kRedisServer, redis-server on a free port, ready once it
// answers PING (it has no metrics port). The destructor kills it if a test did not stop it.
class ServerProcess {
 public:
  using Options = ServerOptions;
  ServerProcess(const std::string& model, const std::vector<std::string>& extra_flags = {},
                const Options& options = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  int pid() const { return pid_; }

  // Sends `signal_number` and waits up to `timeout` for the exit. Returns the exit code, or -1 if
  // it did not exit in time (it is then killed), or 128+N if killed by signal N.
  int Stop(int signal_number, std::chrono::milliseconds timeout = std::chrono::seconds(15));

  // What the server wrote to stderr so far, when started with capture_stderr.
  std::string stderr_text() const;

 private:
  void StartRedisServer(const std::vector<std::string>& extra_flags);

  int pid_ = -1;
  std::string stderr_path_;  // a temporary file, when capturing
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
};

// TCP_NODELAY of each connection the server holds on its service port, read from the server's own
// sockets (pidfd_getfd copies each descriptor of the server and of its child processes into this
// process): one entry a connected socket, true where Nagle's algorithm is off.
std::vector<bool> ServerConnectionsNoDelay(const ServerProcess& server);

// A loopback port nothing listens on right now (bound, read back, released).
std::uint16_t FreeLoopbackPort();

// Runs the binary with `args` to completion; returns the exit code and fills *output with stderr
// and stdout.
int RunBinary(const std::vector<std::string>& args, std::string* output);

// Runs a command line through the shell and returns its stdout (for redis-cli, redis-benchmark).
std::string RunShell(const std::string& command, int* exit_code = nullptr);

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};

// A hiredis connection with a 10 s timeout on every call.
class Client {
 public:
  explicit Client(std::uint16_t port);
  // Binary safe: each argument is sent as a bulk string.
  Reply Command(const std::vector<std::string>& args);
  void Append(const std::vector<std::string>& args);
  Reply GetReply();
  redisContext* context() { return context_.get(); }

 private:
  std::unique_ptr<redisContext, ContextDeleter> context_;
};

// A raw TCP connection for sending exactly the bytes a test wants, malformed ones included.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  void Send(std::string_view bytes);
  // Reads until `expected_size` bytes arrived, the peer closed, or `timeout` passed.
  std::string ReadSome(std::size_t expected_size,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads everything until the peer closes; false if it is still open after `timeout`.
  bool ReadUntilClosed(std::string* data,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void CloseWrite();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// A reply as text, for assertions and messages: the string, the integer, or <nil> / <no reply>.
std::string Text(const redisReply* reply);
// `args` as one RESP multibulk request, for sending raw.
std::string Multibulk(const std::vector<std::string>& args);

// GET /metrics from the server's endpoint; returns the body.
std::string ScrapeMetrics(std::uint16_t port);
// The value of the first sample whose line starts with `series` (e.g. `x_total{kind="a"}`), or -1.
double MetricValue(const std::string& scrape, const std::string& series);
// Polls the metrics until `series` reaches `value` (at least), or 10 s pass; returns the last seen.
double AwaitMetricAtLeast(std::uint16_t metrics_port, const std::string& series, double value);

}  // namespace switchyard::testing
