#include "servers/models.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "servers/coroutine/coroutine_server.h"
#include "servers/fiber/fiber_server.h"
#include "servers/grpc/grpc_server.h"
#include "servers/prefork/prefork_server.h"
#include "servers/thread_per_conn/thread_per_conn_server.h"
#include "servers/thread_pool/thread_pool_server.h"

namespace switchyard {

namespace {

// The registry. Append a new model at the end: a model's place is its port number in the compose
// stack, so inserting one moves the ports of every model after it.
constexpr Model kModels[] = {
    {.name = "prefork",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs =
         "a pool of forked worker processes, each serving one connection at a time, blocking I/O",
     .start_processes = StartPreforkPool,
     .run = RunPreforkServer},
    {.name = "thread_per_conn",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs = "a new OS thread per connection, blocking I/O",
     .run = RunThreadPerConnServer},
    {.name = "thread_pool",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kKernel,
     .runs = "a pool of worker threads fed ready connections by an epoll reactor",
     .run = RunThreadPoolServer},
    {.name = "fiber",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a stackful fiber per connection on event-loop threads",
     .run = RunFiberServer},
    {.name = "coroutine",
     .protocol = Protocol::kResp,
     .scheduler = Scheduler::kUserSpace,
     .runs = "a C++20 stackless coroutine per connection on event-loop threads",
     .run = RunCoroutineServer},
    {.name = "grpc",
     .protocol = Protocol::kGrpc,
     .scheduler = Scheduler::kKernel,
     .runs = "gRPC's callback server (kv.proto) on gRPC's own threads",
     .run = RunGrpcServer},
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

std::string_view SchedulerName(Scheduler scheduler) {
  return scheduler == Scheduler::kKernel ? "kernel" : "user-space";
}

void PrintModels(std::ostream& out, std::string_view format) {
  if (format == "tsv") {
    for (const Model& m : kModels) {
      out << m.name << '\t' << ProtocolName(m.protocol) << '\t' << SchedulerName(m.scheduler)
          << '\t' << m.runs << '\n';
    }
  } else if (format == "json") {
    auto list = nlohmann::json::array();
    for (const Model& m : kModels) {
      list.push_back({{"name", m.name},
                      {"protocol", ProtocolName(m.protocol)},
                      {"scheduled_by", SchedulerName(m.scheduler)},
                      {"runs", m.runs}});
    }
    out << list.dump(2) << '\n';
  } else if (format == "table") {
    std::size_t width = std::string_view("model").size();
    for (const Model& m : kModels) width = std::max(width, m.name.size());
    const auto padded = [](std::string_view text, std::size_t size) {
      return std::string(text) + std::string(size > text.size() ? size - text.size() : 0, ' ');
    };
    const auto row = [&](std::string_view name, std::string_view protocol,
                         std::string_view scheduler, std::string_view runs) {
      out << padded(name, width + 2) << padded(protocol, 10) << padded(scheduler, 14) << runs
          << '\n';
    };
    row("model", "protocol", "scheduled by", "how it runs");
    for (const Model& m : kModels) {
      row(m.name, ProtocolName(m.protocol), SchedulerName(m.scheduler), m.runs);
    }
  } else {
    throw std::invalid_argument("unknown --format '" + std::string(format) +
                                "' (table, tsv or json)");
  }
}

}  // namespace switchyard
