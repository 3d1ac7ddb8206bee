#include "servers/models.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "servers/coroutine/coroutine_server.h"
#include "servers/fiber/fiber_server.h"
#include "servers/grpc/grpc_server.h"
#include "servers/peers.h"
#include "servers/prefork/prefork_server.h"
#include "servers/thread_per_conn/thread_per_conn_server.h"
#include "servers/thread_pool/thread_pool_server.h"

namespace switchyard {

namespace {

// The peers' programs (docs/peers.md); their folders' CMakeLists.txt say where they are.
constexpr const char* kGoCommand[] = {SWITCHYARD_GO_PEER, nullptr};
constexpr Peer kGo{.runtime = "go", .command = kGoCommand, .package = "golang-go"};
constexpr const char* kPythonCommand[] = {"/usr/bin/python3", SWITCHYARD_PYTHON_PEER, nullptr};
constexpr Peer kPython{.runtime = "python", .command = kPythonCommand, .package = "python3"};
constexpr Peer kUvloop{.runtime = "python", .command = kPythonCommand, .package = "python3-uvloop"};
constexpr Peer kGevent{.runtime = "python", .command = kPythonCommand, .package = "python3-gevent"};

// The registry. Append a new model at the end: a model's place is its port number in the compose
// stack, so inserting one moves the ports of every model after it.
constexpr Model kModels[] = {
    {.name = "prefork",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs =
         "a pool of forked worker processes, each serving one connection at a time, blocking I/O",
     .start_processes = StartPreforkPool,
     .run = RunPreforkServer,
     .shared_unit = "process pool forked at start",
     .waits_in = "recv"},
    {.name = "thread_per_conn",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs = "a new OS thread per connection, blocking I/O",
     .run = RunThreadPerConnServer,
     .unit = "thread",
     .waits_in = "recv",
     .unit_stack_mapped = true},
    {.name = "thread_pool",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs = "a pool of worker threads fed ready connections by an epoll reactor",
     .run = RunThreadPoolServer,
     .shared_unit = "shared pool",
     .waits_in = "epoll"},
    {.name = "fiber",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a stackful fiber per connection on event-loop threads",
     .run = RunFiberServer,
     .unit = "fiber",
     .waits_in = "epoll",
     .unit_stack_mapped = true},
    {.name = "coroutine",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a C++20 stackless coroutine per connection on event-loop threads",
     .run = RunCoroutineServer,
     .unit = "coroutine",
     .waits_in = "epoll"},
    {.name = "grpc",
     .protocol = Protocol::kGrpc,
     .scheduler = Scheduler::kKernel,
     .runs = "gRPC's callback server (kv.proto) on gRPC's own threads",
     .run = RunGrpcServer,
     .shared_unit = "shared (gRPC's threads)",
     .waits_in = "epoll"},
    {.name = "go",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a goroutine per connection, M:N over GOMAXPROCS threads, preemptive",
     .start_processes = StartPeer,
     .run = RunPeer,
     .peer = &kGo,
     .unit = "goroutine",
     .waits_in = "epoll"},
    {.name = "asyncio",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a stackless coroutine per connection on asyncio's event loop, one thread",
     .start_processes = StartPeer,
     .run = RunPeer,
     .peer = &kPython,
     .unit = "asyncio-task",
     .waits_in = "epoll"},
    {.name = "uvloop",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "the asyncio code on uvloop's libuv event loop, one thread",
     .start_processes = StartPeer,
     .run = RunPeer,
     .peer = &kUvloop,
     .unit = "asyncio-task",
     .waits_in = "epoll"},
    {.name = "gevent",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a stackful greenlet per connection on gevent's hub, one thread",
     .start_processes = StartPeer,
     .run = RunPeer,
     .peer = &kGevent,
     .unit = "greenlet",
     .waits_in = "epoll"},
    {.name = "pythreads",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs = "an OS thread per connection under the GIL, blocking I/O",
     .start_processes = StartPeer,
     .run = RunPeer,
     .peer = &kPython,
     .unit = "python-thread",
     .waits_in = "recv",
     .unit_stack_mapped = true},
};

}  // namespace

std::span<const Model> Models() { return kModels; }

const Model* FindModel(std::string_view name) {
  for (const Model& model : kModels) {
    if (model.name == name) return &model;
  }
  return nullptr;
}

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const Model& model : kModels) names.emplace_back(model.name);
  return names;
}

std::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kResp ? "resp" : "grpc";
}

std::string_view RuntimeName(const Model& model) {
  return model.peer != nullptr ? model.peer->runtime : "c++";
}

std::string_view SchedulerName(Scheduler scheduler) {
  return scheduler == Scheduler::kKernel ? "kernel" : "user-space";
}

void PrintModels(std::ostream& out, std::string_view format) {
  if (format == "tsv") {
    for (const Model& m : kModels) {
      out << m.name << '\t' << ProtocolName(m.protocol) << '\t' << SchedulerName(m.scheduler)
          << '\t' << m.runs << '\t' << RuntimeName(m) << '\n';
    }
  } else if (format == "json") {
    auto list = nlohmann::json::array();
    for (const Model& m : kModels) {
      list.push_back({{"name", m.name},
                      {"protocol", ProtocolName(m.protocol)},
                      {"scheduled_by", SchedulerName(m.scheduler)},
                      {"runs", m.runs},
                      {"runtime", RuntimeName(m)},
                      {"unit", m.unit},
                      {"shared_unit", m.shared_unit},
                      {"waits_in", m.waits_in},
                      {"unit_stack_mapped", m.unit_stack_mapped}});
    }
    out << list.dump(2) << '\n';
  } else if (format == "table") {
    std::size_t width = std::string_view("model").size();
    for (const Model& m : kModels) width = std::max(width, m.name.size());
    const auto padded = [](std::string_view text, std::size_t size) {
      return std::string(text) + std::string(size > text.size() ? size - text.size() : 0, ' ');
    };
    const auto row = [&](std::string_view name, std::string_view protocol,
                         std::string_view scheduler, std::string_view runtime,
                         std::string_view runs) {
      out << padded(name, width + 2) << padded(protocol, 10) << padded(scheduler, 14)
          << padded(runtime, 9) << runs << '\n';
    };
    row("model", "protocol", "scheduled by", "runtime", "how it runs");
    for (const Model& m : kModels) {
      row(m.name, ProtocolName(m.protocol), SchedulerName(m.scheduler), RuntimeName(m), m.runs);
    }
  } else {
    throw std::invalid_argument("unknown --format '" + std::string(format) +
                                "' (table, tsv or json)");
  }
}

}  // namespace switchyard
