// Measuring in processes of switchcost's own: a helper process whose growth goes away with it, a
// child that runs a function, a pipe between them; and a figure as JSON, which is how helpers and
// the peers' programs hand their figures back.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

nlohmann::json FigureToJson(const Figure& figure);
Figure FigureFromJson(const nlohmann::json& row);

// Runs `measure` in a fresh helper process and returns its figures. What the helper grows by
// goes away with it, so this process stays small for what is measured after it (fork copies
// page tables: a grown process would make every later fork dearer).
std::vector<Figure> InHelperProcess(const std::function<std::vector<Figure>()>& measure);

// Waits for `child` and throws unless it exited with status 0.
void WaitForSuccess(pid_t child, const std::string& what);

// A pipe between a process and a child it forks (both keep both ends; use one a direction).
// Receive gives up after 10 s, so a side that died is reported rather than waited for forever.
class Pipe {
 public:
  Pipe() {
    if (pipe2(fds_, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
  }
  ~Pipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  template <typename T>
  bool Send(const T& value) {
    return write(fds_[1], &value, sizeof value) == static_cast<ssize_t>(sizeof value);
  }
  template <typename T>
  bool Receive(T& value) {
    pollfd readable{fds_[0], POLLIN, 0};
    return poll(&readable, 1, 10'000) == 1 &&
           read(fds_[0], &value, sizeof value) == static_cast<ssize_t>(sizeof value);
  }

 private:
  int fds_[2] = {-1, -1};
};

// A forked child that runs `body` and exits with what it returns. Wait() reaps it; if an error
// comes first, the destructor kills and reaps it, so no error path leaves a child behind.
class Child {
 public:
  explicit Child(const std::function<int()>& body);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void Wait(const std::string& what);

 private:
  pid_t pid_;
};

}  // namespace switchyard::switchcost
