// The grpc model: the baseline a team would reach for instead of writing a server. Each call is a
// unary callback (gRPC's "reactor" API): gRPC parses HTTP/2 and protobuf on its own threads, calls
// the method, and sends what Finish is given. Who runs next is gRPC's business; this file only
// maps kv.proto's operations onto the shared store, and the simulated work (Work) onto the same
// primitives as SY.CPU, SY.WAIT and SY.BLOCK, with the same semantics and metrics as the
// Redis-protocol models.
//
// The listening socket is the one every model gets (bound before "ready" is printed); the main
// thread accepts on it and gives each connection to gRPC (AddInsecureChannelFromFd). gRPC then
// owns the descriptor and says nothing when it closes, so this model counts connections accepted
// but cannot know how many are open: switchyard_connections_active stays 0 and --max-clients
// is not enforced here.
#include "servers/grpc/grpc_server.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "proto/kv.grpc.pb.h"
#include "servers/common/commands.h"
#include "servers/common/net.h"
#include "servers/common/open_connections.h"

namespace switchyard {
namespace {

class KvService final : public kv::Kv::CallbackService {
 public:
  explicit KvService(ServerContext& context) : context_(context) {}

  // The graceful stop: calls that arrive from now on are refused (UNAVAILABLE, nothing done), and
  // the ones already admitted get until `deadline` to send their replies. Returns how many have
  // not.
  int StopAndDrain(std::chrono::steady_clock::time_point deadline) {
    stopping_ = true;
    while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return in_flight_;
  }

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* call, const kv::EchoRequest* request,
                                 kv::EchoReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    FailEchoForTest(request->message());
    reply->set_message(request->message());
    return Finish(call, CommandId::kEcho, started, grpc::Status::OK);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* call, const kv::GetRequest* request,
                                kv::GetReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    reply->set_found(context_.store.Get(request->key(), reply->mutable_value()) ==
                     Store::Status::kOk);
    return Finish(call, CommandId::kGet, started, grpc::Status::OK);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* call, const kv::SetRequest* request,
                                kv::SetReply*) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    grpc::Status status = CheckSize(request->key());
    if (status.ok()) status = CheckSize(request->value());
    if (status.ok()) status = StoreRefusal(context_.store.Set(request->key(), request->value()));
    return Finish(call, CommandId::kSet, started, status);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* Del(grpc::CallbackServerContext* call, const kv::DelRequest* request,
                                kv::DelReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    std::int64_t deleted = 0;
    for (const std::string& key : request->keys()) deleted += context_.store.Del(key) ? 1 : 0;
    reply->set_deleted(deleted);
    return Finish(call, CommandId::kDel, started, grpc::Status::OK);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* Incr(grpc::CallbackServerContext* call, const kv::IncrRequest* request,
                                 kv::IncrReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    std::int64_t value = 0;
    const grpc::Status status = IncrementBy(request->key(), 1, &value);
    reply->set_value(value);
    return Finish(call, CommandId::kIncr, started, status);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* IncrBy(grpc::CallbackServerContext* call,
                                   const kv::IncrByRequest* request,
                                   kv::IncrByReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    std::int64_t value = 0;
    const grpc::Status status = IncrementBy(request->key(), request->delta(), &value);
    reply->set_value(value);
    return Finish(call, CommandId::kIncrBy, started, status);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* MGet(grpc::CallbackServerContext* call, const kv::MGetRequest* request,
                                 kv::MGetReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    if (request->keys().empty()) return Finish(call, CommandId::kMGet, started, NoKeys("mget"));
    const std::vector<std::string_view> keys(request->keys().begin(), request->keys().end());
    std::vector<std::optional<std::string>> values;
    context_.store.MultiGet(keys, &values);  // one snapshot of every key
    reply->mutable_values()->Reserve(static_cast<int>(values.size()));
    for (std::optional<std::string>& value : values) {
      kv::MaybeValue* out = reply->add_values();
      if (!value) continue;
      out->set_found(true);
      out->set_value(std::move(*value));
    }
    return Finish(call, CommandId::kMGet, started, grpc::Status::OK);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* MSet(grpc::CallbackServerContext* call, const kv::MSetRequest* request,
                                 kv::MSetReply* reply) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    const bool nx = request->only_if_all_absent();
    const CommandId command = nx ? CommandId::kMSetNx : CommandId::kMSet;
    if (request->pairs().empty()) {
      return Finish(call, command, started, NoKeys(nx ? "msetnx" : "mset"));
    }
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    pairs.reserve(static_cast<std::size_t>(request->pairs().size()));
    grpc::Status status;
    for (const kv::KeyValue& pair : request->pairs()) {
      // Checked before anything is written: all or nothing holds for a refusal too.
      status = CheckSize(pair.key());
      if (status.ok()) status = CheckSize(pair.value());
      if (!status.ok()) return Finish(call, command, started, status);
      pairs.emplace_back(pair.key(), pair.value());
    }
    const Store::Status outcome = context_.store.MultiSet(pairs, nx);
    if (outcome == Store::Status::kNotWritten) {
      reply->set_written(false);  // MSETNX's 0: an answer, not an error
    } else {
      status = StoreRefusal(outcome);
      reply->set_written(status.ok());
    }
    return Finish(call, command, started, status);
  } catch (const std::exception& error) {
    return Failed(error);
  }

  grpc::ServerUnaryReactor* Work(grpc::CallbackServerContext* call, const kv::WorkRequest* request,
                                 kv::WorkReply*) override try {
    const auto started = Clock::now();
    if (auto* refused = RefuseIfStopping(call)) return refused;
    const CommandId command = request->kind() == kv::WorkRequest::WAIT    ? CommandId::kSyWait
                              : request->kind() == kv::WorkRequest::BLOCK ? CommandId::kSyBlock
                                                                          : CommandId::kSyCpu;
    if (request->micros() < 0 || request->micros() > kMaxSimulatedMicros) {
      return Finish(
          call, command, started,
          Error(ErrorKind::kWrongArguments, grpc::StatusCode::INVALID_ARGUMENT,
                "ERR usec must be an integer from 0 to " + std::to_string(kMaxSimulatedMicros)));
    }
    const std::chrono::microseconds duration(request->micros());
    switch (request->kind()) {
      case kv::WorkRequest::CPU:
        BurnCpu(duration);
        break;
      case kv::WorkRequest::BLOCK:
        // A real blocking sleep on the gRPC thread running the call: it holds that thread, which
        // is what SY.BLOCK is for.
        std::this_thread::sleep_for(duration);
        break;
      case kv::WorkRequest::WAIT: {
        // gRPC's natural wait in the callback API: return the reactor now and finish it from a
        // timer, so no thread is held while the "downstream call" is pending.
        auto* reply = new WaitingReply(in_flight_, context_.metrics);
        reply->Start(duration, [this, started] {
          if (context_.config.request_metrics) Record(CommandId::kSyWait, started);
        });
        return reply;
      }
      default:
        return Finish(call, command, started,
                      Error(ErrorKind::kWrongArguments, grpc::StatusCode::INVALID_ARGUMENT,
                            "ERR Work needs a kind: CPU, WAIT or BLOCK"));
    }
    return Finish(call, command, started, grpc::Status::OK);
  } catch (const std::exception& error) {
    return Failed(error);
  }

 private:
  using Clock = std::chrono::steady_clock;

  // A call counts as in flight from admission until gRPC has sent its reply (OnDone).
  class Reply : public grpc::ServerUnaryReactor {
   public:
    Reply(std::atomic<int>& in_flight, Metrics& metrics)
        : in_flight_(in_flight), metrics_(metrics) {}
    void OnDone() override {
      metrics_.TaskFinished();
      --in_flight_;
      delete this;
    }

   private:
    std::atomic<int>& in_flight_;
    Metrics& metrics_;
  };

  // Work(WAIT): the reply is finished by an alarm's callback after the wait. The call stays in
  // flight meanwhile, so a graceful stop waits for it like for any other call.
  class WaitingReply : public Reply {
   public:
    using Reply::Reply;
    void Start(std::chrono::microseconds wait, std::function<void()> on_finish) {
      alarm_.Set(std::chrono::system_clock::now() + wait,
                 [this, on_finish = std::move(on_finish)](bool) {
                   on_finish();
                   Finish(grpc::Status::OK);
                 });
    }

   private:
    grpc::Alarm alarm_;
  };

  // Counts the call in first, then looks at stopping_: StopAndDrain sets stopping_ first, then
  // reads the count, so either it waits for this call or this call sees the stop.
  grpc::ServerUnaryReactor* RefuseIfStopping(grpc::CallbackServerContext*) {
    ++in_flight_;
    context_.metrics.TaskStarted();  // a call in flight is the unit gRPC schedules
    if (!stopping_) return nullptr;
    auto* reply = new Reply(in_flight_, context_.metrics);
    reply->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    return reply;
  }

  // What escaped a call's handling (out of memory, say): counted and logged as a RESP model counts
  // a failed connection, and the call, already admitted by RefuseIfStopping, fails with INTERNAL.
  // The connection and every other call go on.
  grpc::ServerUnaryReactor* Failed(const std::exception& error) {
    context_.metrics.ConnectionFailed();
    std::cerr << "switchyard: a call failed: " << error.what() << "\n";
    auto* reply = new Reply(in_flight_, context_.metrics);
    reply->Finish(grpc::Status(grpc::StatusCode::INTERNAL, error.what()));
    return reply;
  }

  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext*, CommandId command,
                                   Clock::time_point started, const grpc::Status& status) {
    if (context_.config.request_metrics) Record(command, started);
    auto* reply = new Reply(in_flight_, context_.metrics);
    reply->Finish(status);
    return reply;
  }

  void Record(CommandId command, Clock::time_point started) {
    context_.metrics.RecordRequest(static_cast<std::size_t>(command),
                                   std::chrono::duration<double>(Clock::now() - started).count());
  }

  grpc::Status Error(ErrorKind kind, grpc::StatusCode code, const std::string& message) {
    context_.metrics.RecordError(kind);
    return grpc::Status(code, message);
  }

  // What a write's outcome means as a gRPC status: OK, or the store's refusal in RESP's words.
  grpc::Status StoreRefusal(Store::Status outcome) {
    switch (outcome) {
      case Store::Status::kOk:
        return grpc::Status::OK;
      case Store::Status::kAllocatorDamaged:
        // Not UNAVAILABLE, which invites retries: none helps until the server restarts.
        return Error(ErrorKind::kStoreDamaged, grpc::StatusCode::FAILED_PRECONDITION,
                     kAllocatorDamagedError);
      default:
        return Error(ErrorKind::kOom, grpc::StatusCode::RESOURCE_EXHAUSTED, kOomError);
    }
  }

  // INCR and INCRBY: the store's atomic add, its refusals in Redis's words. `*value` is written
  // only when the status is OK.
  grpc::Status IncrementBy(const std::string& key, std::int64_t delta, std::int64_t* value) {
    grpc::Status status = CheckSize(key);
    if (!status.ok()) return status;
    const Store::Status outcome = context_.store.Incr(key, delta, value);
    switch (outcome) {
      case Store::Status::kOk:
        return grpc::Status::OK;
      case Store::Status::kOverflow:
        return Error(ErrorKind::kWrongArguments, grpc::StatusCode::OUT_OF_RANGE, kOverflowError);
      case Store::Status::kNotInteger:
        return Error(ErrorKind::kWrongArguments, grpc::StatusCode::INVALID_ARGUMENT,
                     kNotIntegerError);
      default:
        return StoreRefusal(outcome);
    }
  }

  // A multi-key call with no key, as Redis answers the command without its arguments.
  grpc::Status NoKeys(const std::string& command) {
    return Error(ErrorKind::kWrongArguments, grpc::StatusCode::INVALID_ARGUMENT,
                 "ERR wrong number of arguments for '" + command + "' command");
  }

  // The RESP models refuse a bulk string over --max-bulk-bytes; so does this one.
  grpc::Status CheckSize(const std::string& bytes) {
    if (bytes.size() <= context_.config.max_bulk_bytes) return grpc::Status::OK;
    return Error(ErrorKind::kLimit, grpc::StatusCode::INVALID_ARGUMENT,
                 "ERR a key or value is larger than --max-bulk-bytes (" +
                     std::to_string(context_.config.max_bulk_bytes) + ")");
  }

  ServerContext& context_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
};

// Accepts until the shutdown signal, handing every connection to gRPC.
void AcceptUntilSignalled(ServerContext& context, grpc::Server& server, int listen_fd,
                          int signal_fd) {
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: back off instead of spinning on a ready listen socket.
        std::cerr << "switchyard: accept failed: " << std::strerror(errno) << "\n";
        poll(nullptr, 0, 10);
      }
      continue;
    }
    SetNoDelay(fd);
    context.metrics.ConnectionAccepted();
    context.metrics.ConnectionClosed();  // gRPC owns it from here and never says when it closes
    grpc::AddInsecureChannelFromFd(&server, fd);
  }
}

}  // namespace

int RunGrpcServer(ServerContext& context, int listen_fd, int signal_fd) {
  KvService service(context);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  // Room for a SET of two bulk strings at the limit, and for as large an MSet as the RESP models
  // take in one request (their query buffer); gRPC's own default is 4 MiB.
  const std::size_t largest =
      std::max(2 * context.config.max_bulk_bytes + (64 << 10), context.config.query_buffer_bytes);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<std::size_t>(largest, INT_MAX)));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) throw std::runtime_error("cannot start the gRPC server");

  AcceptUntilSignalled(context, *server, listen_fd, signal_fd);
  close(listen_fd);
  // gRPC's own Shutdown(deadline) would also wait for every idle connection to close, and an idle
  // C++ client does not even read the GOAWAY that asks it to. So the service drains its calls
  // itself, and then gRPC is told to stop at once: cancel what is left (refused calls only) and
  // close every connection.
  const int in_flight = service.StopAndDrain(DrainDeadline(context.config));
  if (in_flight != 0) {
    // A call still running holds its reactor (a Work WAIT's alarm, a BLOCK's thread), and gRPC's
    // Shutdown waits for every reactor: no orderly return is possible, as in every model.
    std::_Exit(DrainTimedOut(in_flight, "calls still in flight", context.config));
  }
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  return 0;
}

}  // namespace switchyard
