#include "servers/peers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "servers/common/child_process.h"
#include "servers/models.h"

namespace switchyard {
namespace {

// How long a peer may take to start serving: an interpreter's imports, a cold disk cache.
constexpr int kReadyTimeoutMs = 30'000;

pid_t g_peer = -1;

// The descriptors a peer inherits, in this order from 3 (docs/peers.md).
enum InheritedFd { kListenFd = 3, kReadyFd = 4, kMetricsFd = 5 };

std::vector<std::string> PeerArguments(const Peer& peer, const ServerConfig& config,
                                       const std::string& layout) {
  std::vector<std::string> args;
  for (const char* const* part = peer.command; *part != nullptr; ++part) args.emplace_back(*part);
  std::ostringstream timeout;
  timeout << config.shutdown_timeout;
  const std::pair<const char*, std::string> flags[] = {
      {"--model", config.model},
      {"--listen-fd", std::to_string(kListenFd)},
      {"--ready-fd", std::to_string(kReadyFd)},
      {"--metrics-fd", std::to_string(kMetricsFd)},
      {"--metrics-layout", layout},
      {"--threads", std::to_string(config.threads)},
      {"--max-clients", std::to_string(config.max_clients)},
      {"--max-bulk-bytes", std::to_string(config.max_bulk_bytes)},
      {"--max-inline-bytes", std::to_string(config.max_inline_bytes)},
      {"--query-buffer-bytes", std::to_string(config.query_buffer_bytes)},
      {"--output-buffer-bytes", std::to_string(config.output_buffer_bytes)},
      {"--store-bytes", std::to_string(config.store_bytes)},
      {"--shutdown-timeout", timeout.str()},
  };
  for (const auto& [flag, value] : flags) {
    args.emplace_back(flag);
    args.push_back(value);
  }
  if (config.workers != 0) args.insert(args.end(), {"--workers", std::to_string(config.workers)});
  if (config.stack_kb != 0)
    args.insert(args.end(), {"--stack-kb", std::to_string(config.stack_kb)});
  if (config.quiet) args.emplace_back("--quiet");
  if (!config.request_metrics) args.emplace_back("--no-request-metrics");
  return args;
}

// In the child: the three descriptors in their places, a clean signal state, then the program.
[[noreturn]] void ExecPeer(std::vector<std::string>& args, const int (&inherited)[3],
                           pid_t parent) {
  setpgid(0, 0);  // Ctrl-C reaches serve alone, which passes a stop on as SIGTERM
  DieWithParent(parent);
  int moved[3];
  for (int i = 0; i < 3; ++i) moved[i] = fcntl(inherited[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; ++i) dup2(moved[i], kListenFd + i);  // dup2's copy is inherited
  // An ignored signal stays ignored across exec; the peer's runtime sets its own.
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  const std::string error =
      "switchyard: cannot run " + args[0] + ": " + std::strerror(errno) + "\n";
  [[maybe_unused]] ssize_t n = write(STDERR_FILENO, error.data(), error.size());
  _exit(127);
}

}  // namespace

void StartPeer(ServerContext& context, int listen_fd) {
  const Peer& peer = *FindModel(context.config.model)->peer;
  for (const char* const* part = peer.command; *part != nullptr && **part == '/'; ++part) {
    if (access(*part, R_OK) != 0) {
      throw std::runtime_error("the " + context.config.model + " peer needs " + *part +
                               ", which is missing (" + std::strerror(errno) + "): install " +
                               std::string(peer.package) + " (apt-get install " +
                               std::string(peer.package) + ") and run ./switchyard build");
    }
  }
  context.metrics.ReserveChildSlots(1);
  std::vector<std::string> args =
      PeerArguments(peer, context.config, context.metrics.SlotLayoutJson(0));
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  const int inherited[3] = {listen_fd, ready[1], context.metrics.shared_fd()};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecPeer(args, inherited, parent);
  close(ready[1]);
  if (pid < 0) {
    close(ready[0]);
    throw std::runtime_error(std::string("cannot fork the peer: ") + std::strerror(errno));
  }
  g_peer = pid;
  context.metrics.ChildStarted(0, pid);
  pollfd readable{ready[0], POLLIN, 0};
  int polled;
  while ((polled = poll(&readable, 1, kReadyTimeoutMs)) < 0 && errno == EINTR) {
  }
  char byte = 0;
  const bool is_ready = polled > 0 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (is_ready) return;
  if (polled == 0) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  throw std::runtime_error(
      "the " + context.config.model + " peer (" + args[0] + ") " +
      (polled == 0 ? "did not get ready within " + std::to_string(kReadyTimeoutMs / 1000) + " s"
                   : HowItEnded(status) + " before it was ready"));
}

int RunPeer(ServerContext&, int listen_fd, int signal_fd) {
  close(listen_fd);  // the peer holds its own copy
  return SuperviseChild(g_peer, signal_fd, "peer");
}

}  // namespace switchyard
