#include "switchcost/helper_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <utility>

namespace switchyard::switchcost {

nlohmann::json FigureToJson(const Figure& figure) {
  return {{"unit", figure.unit},     {"operation", figure.operation},
          {"method", figure.method}, {"pinned", figure.pinned},
          {"value", figure.value},   {"unit_of_value", figure.unit_of_value},
          {"spread", figure.spread}, {"runs", figure.runs},
          {"note", figure.note}};
}

Figure FigureFromJson(const nlohmann::json& row) {
  return Figure{row.at("unit").get<std::string>(),   row.at("operation").get<std::string>(),
                row.at("method").get<std::string>(), row.at("pinned").get<bool>(),
                row.at("value").get<double>(),       row.at("unit_of_value").get<std::string>(),
                row.at("spread").get<double>(),      row.at("runs").get<int>(),
                row.at("note").get<std::string>()};
}

namespace {

bool WriteAll(int fd, const std::string& text) {
  for (std::size_t sent = 0; sent < text.size();) {
    const ssize_t wrote = write(fd, text.data() + sent, text.size() - sent);
    if (wrote <= 0) return false;
    sent += static_cast<std::size_t>(wrote);
  }
  return true;
}

}  // namespace

std::vector<Figure> InHelperProcess(const std::function<std::vector<Figure>()>& measure) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  const pid_t helper = fork();
  if (helper < 0) {
    const int error = errno;
    close(fds[0]);
    close(fds[1]);
    throw std::system_error(error, std::generic_category(), "fork of a helper process");
  }
  if (helper == 0) {
    close(fds[0]);
    int status = 1;
    try {
      nlohmann::json rows = nlohmann::json::array();
      for (const Figure& figure : measure()) rows.push_back(FigureToJson(figure));
      if (WriteAll(fds[1], rows.dump())) status = 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "switchcost: %s\n", e.what());
    }
    _exit(status);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, got);
  close(fds[0]);
  WaitForSuccess(helper, "a helper process of the fork measurements (its reason is above)");
  std::vector<Figure> figures;
  for (const nlohmann::json& row : nlohmann::json::parse(text))
    figures.push_back(FigureFromJson(row));
  return figures;
}

void WaitForSuccess(pid_t child, const std::string& what) {
  int status = 0;
  if (waitpid(child, &status, 0) != child) {
    throw std::system_error(errno, std::generic_category(), "waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(what + " failed (wait status " + std::to_string(status) + ")");
  }
}

Child::Child(const std::function<int()>& body) : pid_(fork()) {
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    int status = 1;
    try {
      status = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "switchcost: %s\n", e.what());
    }
    _exit(status);
  }
}

Child::~Child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Child::Wait(const std::string& what) { WaitForSuccess(std::exchange(pid_, -1), what); }

}  // namespace switchyard::switchcost
