#include "tests/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace switchyard::testing {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return argv;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int ConnectLoopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + strerror(errno));
  }
  return fd;
}

// `pid` and every process below it, from each thread's /proc children list.
void CollectProcessTree(int pid, std::vector<int>* pids) {
  pids->push_back(pid);
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream children(task.path() / "children");
    for (int child; children >> child;) CollectProcessTree(child, pids);
  }
}

std::uint16_t PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

}  // namespace

std::vector<bool> ServerConnectionsNoDelay(const ServerProcess& server) {
  std::vector<int> pids;
  CollectProcessTree(server.pid(), &pids);
  std::vector<bool> no_delay;
  for (const int pid : pids) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) continue;  // exited meanwhile
    std::error_code ec;
    const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(fds, ec)) {
      const auto target = std::filesystem::read_symlink(entry.path(), ec);
      if (ec || target.string().rfind("socket:", 0) != 0) continue;
      const int fd = static_cast<int>(
          syscall(SYS_pidfd_getfd, pidfd, std::stoi(entry.path().filename().string()), 0));
      if (fd < 0) continue;
      sockaddr_storage local{}, peer{};
      socklen_t local_length = sizeof local, peer_length = sizeof peer;
      int value = 0;
      socklen_t value_length = sizeof value;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
          (local.ss_family == AF_INET || local.ss_family == AF_INET6) &&
          PortOf(local) == server.port() &&
          getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) == 0 &&
          getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &value_length) == 0) {
        no_delay.push_back(value != 0);
      }
      close(fd);
    }
    close(pidfd);
  }
  return no_delay;
}

ServerProcess::ServerProcess(const std::string& model, const std::vector<std::string>& extra_flags,
                             const Options& options) {
  if (model == kRedisServer) {
    StartRedisServer(extra_flags);
    return;
  }
  std::vector<std::string> args = {SWITCHYARD_BINARY, "serve", "--model", model, "--port", "0",
                                   "--metrics-port",  "0",     "--quiet"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  int err = -1;
  if (options.capture_stderr) {
    char path[] = "/tmp/switchyard-stderr-XXXXXX";
    err = mkstemp(path);
    if (err < 0) throw std::runtime_error("mkstemp failed");
    stderr_path_ = path;
  }
  std::vector<std::string> environment = options.environment;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    if (err >= 0) dup2(err, STDERR_FILENO);
    for (std::string& variable : environment) putenv(variable.data());
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  if (err >= 0) close(err);
  // Read the ready line, bounded in time: a server that never gets ready fails the test.
  std::string line;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (line.find('\n') == std::string::npos) {
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, RemainingMs(deadline)) <= 0) break;
    char buffer[256];
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    line.append(buffer, static_cast<std::size_t>(n));
  }
  close(out[0]);  // later stdout writes are not ours to read; the server ignores SIGPIPE
  unsigned port = 0, metrics_port = 0;
  const auto at = line.find("switchyard ready:");
  if (at == std::string::npos ||
      std::sscanf(line.c_str() + at, "switchyard ready: model=%*s port=%u metrics_port=%u", &port,
                  &metrics_port) != 2) {
    Stop(SIGKILL);
    throw std::runtime_error("server did not get ready; it printed: " + line);
  }
  port_ = static_cast<std::uint16_t>(port);
  metrics_port_ = static_cast<std::uint16_t>(metrics_port);
}

void ServerProcess::StartRedisServer(const std::vector<std::string>& extra_flags) {
  port_ = FreeLoopbackPort();
  std::vector<std::string> args = {
      REDIS_SERVER_BINARY, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
      "--appendonly",      "no",     "--databases",         "1"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  pid_ = fork();
  if (pid_ == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    redisContext* context = redisConnect("127.0.0.1", port_);
    const bool ready = context != nullptr && context->err == 0;
    redisFree(context);
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Stop(SIGKILL);
  throw std::runtime_error("redis-server did not accept connections on port " +
                           std::to_string(port_));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL);
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

std::string ServerProcess::stderr_text() const {
  std::ifstream file(stderr_path_);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

int ServerProcess::Stop(int signal_number, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal_number);
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  return ExitCode(status);
}

std::uint16_t FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

int RunBinary(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> all = {SWITCHYARD_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    auto argv = Argv(all);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  output->clear();
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, RemainingMs(deadline)) <= 0) {
      kill(pid, SIGKILL);  // a bad flag must fail fast, never serve
      break;
    }
    char buffer[4096];
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output->append(buffer, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return ExitCode(status);
}

std::string RunShell(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  if (exit_code != nullptr) *exit_code = ExitCode(status);
  return output;
}

Client::Client(std::uint16_t port) {
  const timeval timeout{10, 0};
  context_.reset(redisConnectWithTimeout("127.0.0.1", port, timeout));
  if (context_ == nullptr || context_->err != 0) {
    throw std::runtime_error("hiredis connect failed: " +
                             std::string(context_ ? context_->errstr : "out of memory"));
  }
  redisSetTimeout(context_.get(), timeout);
}

void Client::Append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                         lengths.data());
}

Reply Client::GetReply() {
  void* reply = nullptr;
  if (redisGetReply(context_.get(), &reply) != REDIS_OK) return nullptr;
  return Reply(static_cast<redisReply*>(reply));
}

Reply Client::Command(const std::vector<std::string>& args) {
  Append(args);
  return GetReply();
}

RawConnection::RawConnection(std::uint16_t port) : fd_(ConnectLoopback(port)) {}

RawConnection::~RawConnection() { close(fd_); }

void RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close on us mid-send (protocol errors do)
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string RawConnection::ReadSome(std::size_t expected_size, std::chrono::milliseconds timeout) {
  std::string data;
  const auto deadline = Clock::now() + timeout;
  while (data.size() < expected_size) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, RemainingMs(deadline)) <= 0) break;
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

bool RawConnection::ReadUntilClosed(std::string* data, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, RemainingMs(deadline)) <= 0) return false;
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    data->append(buffer, static_cast<std::size_t>(n));
  }
}

void RawConnection::CloseWrite() { shutdown(fd_, SHUT_WR); }

std::string ScrapeMetrics(std::uint16_t port) {
  RawConnection http(port);
  http.Send("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  std::string response;
  http.ReadUntilClosed(&response);
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

double MetricValue(const std::string& scrape, const std::string& series) {
  std::size_t at = 0;
  while ((at = scrape.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || scrape[at - 1] == '\n') return std::stod(scrape.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

std::string Text(const redisReply* reply) {
  if (reply == nullptr) return "<no reply>";
  if (reply->type == REDIS_REPLY_NIL) return "<nil>";
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  return std::string(reply->str, reply->len);
}

std::string Multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args) out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

double AwaitMetricAtLeast(std::uint16_t metrics_port, const std::string& series, double value) {
  double seen = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
    seen = MetricValue(ScrapeMetrics(metrics_port), series);
    if (seen >= value) break;
  }
  return seen;
}

}  // namespace switchyard::testing
