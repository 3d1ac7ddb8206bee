// The model registry: the one place that says which concurrency models exist. `switchyard serve`
// dispatches through it, `--model` accepts its names, `serve --list-models` prints it, and every
// other list (the comparison, the test suites, the compose stack) reads it from the binary or is
// generated from it. Adding a model is its folder, servers/<model>/, plus one entry in models.cc.
#pragma once

#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "servers/common/server_context.h"

namespace switchyard {

// What a client speaks to the model: the load generator, the comparison and the test suites pick
// their client by it.
enum class Protocol { kResp, kGrpc };

// Who decides which connection's code runs next. The suites expect user-space switches
// (switchyard_user_switches_total) exactly when it is not the kernel.
enum class Scheduler { kKernel, kUserSpace };

// A peer: a server written in another runtime, a program of its own that `serve` starts and
// supervises (servers/peers.cc; the contract is docs/peers.md).
struct Peer {
  std::string_view runtime;    // "go", "python": what --list-models says it is written in
  const char* const* command;  // the program and its first arguments, ending with nullptr
  // The Debian package its runtime comes from, named when the program cannot be found.
  std::string_view package;
};

struct Model {
  // --model's value; also a ctest, compose-service and Prometheus-label name: [a-z][a-z0-9_]*.
  std::string_view name;
  Protocol protocol;
  Scheduler scheduler;
  std::string_view runs;  // how it runs, in a few words, for --list-models
  // Called after the store and the listening socket exist and before the metrics endpoint starts
  // its threads: a model that forks workers does it here (see Serve). Most models have none.
  void (*start_processes)(ServerContext& context, int listen_fd) = nullptr;
  // Serves until shutdown; returns the process exit code.
  int (*run)(ServerContext& context, int listen_fd, int signal_fd);
  const Peer* peer = nullptr;  // set for a peer, whose start_processes and run are servers/peers.h

  // What an idle connection is made of, for the comparison's idle anatomy (compare/anatomy.py):
  // the switch-cost study's unit made for each connection (its rows' "unit"), or empty when what
  // serves a connection existed before it came, as `shared_unit` says; how a connection waits for
  // its next request ("epoll": a loop or reactor, an epoll item a socket; "recv": its unit blocks
  // in the read); and whether that unit has a stack mapping of its own above a guard page.
  std::string_view unit = {};
  std::string_view shared_unit = {};
  std::string_view waits_in = {};
  bool unit_stack_mapped = false;
};

// Every model, in the order the comparison runs them. A model's place in it, from 1, is its number
// N in the compose stack (port 6380+N, metrics 9180+N: deploy/generate.py).
std::span<const Model> Models();

// The model called `name`, or null.
const Model* FindModel(std::string_view name);

std::vector<std::string> ModelNames();

std::string_view ProtocolName(Protocol protocol);     // "resp", "grpc"
std::string_view SchedulerName(Scheduler scheduler);  // "kernel", "user-space"

// What a model is written in: "c++" for the models of this binary, the peer's runtime otherwise.
std::string_view RuntimeName(const Model& model);

// The formats --list-models prints: "table" for people; for scripts "tsv" (a line a model, no
// header: name, protocol, scheduled by, how it runs, runtime) and "json" (an array of objects with
// the keys name, protocol, scheduled_by, runs and runtime, and what an idle connection is made
// of: unit, shared_unit, waits_in and unit_stack_mapped).
inline constexpr std::string_view kListFormats[] = {"table", "tsv", "json"};

// Writes the registry to `out` in one of kListFormats; throws std::invalid_argument otherwise.
void PrintModels(std::ostream& out, std::string_view format);

}  // namespace switchyard
