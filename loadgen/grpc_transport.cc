// The gRPC transport (grpc_transport.h), the thread's side (grpc_engine.h): T threads, each with
// its own grpc::CompletionQueue and its share of the connections. A connection is a channel of its
// own (its own TCP connection: a local subchannel pool and a channel argument that differs per
// connection, so gRPC never shares one). Calls are the asynchronous unary API: a call's completion
// comes back through its thread's queue, tagged with the call, and is matched to the time it was
// due.
//
// Open loop: each thread keeps its connections in a heap by next intended time and sends what is
// due whenever it wakes. gRPC's own timers (an Alarm's deadline, the queue's wait) have millisecond
// resolution, which would make every call up to a millisecond late and charge that to its
// latency (measured: a p50 schedule lag of 0.76 ms at 2,000/s). So a pacer thread per worker sleeps
// precisely (1 ns timer slack) until the next intended time and then wakes the worker through its
// own queue: a grpc::Alarm set with a deadline already past, which completes at once.
#include "loadgen/grpc_transport.h"

#include <netdb.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "loadgen/grpc_engine.h"
#include "loadgen/result.h"
#include "loadgen/run.h"

namespace switchyard::loadgen {
namespace rpc {

void Worker::Run(std::int64_t start_ns) {
  ledger.Begin(start_ns);
  for (auto& connection : connections) connection->Start();
  if (ledger.config.rate > 0) {
    for (auto& connection : connections) {
      if (connection->WantsToSend()) Push(connection.get());
    }
    PublishNextDue();
    // Busy-poll checks the heap on every turn of the loop and needs no pacer.
    if (!ledger.config.busy_poll) pacer_ = std::thread([this] { Pace(); });
  }
  std::int64_t next_tick = NowNs();
  // Until every connection is done and nothing of ours is left in the queue (a call still owed
  // its completion would come back to a destroyed object otherwise).
  while (ledger.done_connections() < connections.size() || outstanding > 0) {
    const std::int64_t now = NowNs();
    if (now >= next_tick) {
      ledger.Tick(now, connections);
      next_tick = now + 100'000'000;
    }
    void* tag = nullptr;
    bool ok = false;
    // Busy-poll: never sleep in the queue.
    sleeping_.store(true, std::memory_order_release);
    const auto status = cq.AsyncNext(
        &tag, &ok,
        ledger.config.busy_poll ? gpr_inf_past(GPR_CLOCK_MONOTONIC) : Deadline(next_tick));
    sleeping_.store(false, std::memory_order_relaxed);
    bool kicked = false;
    if (status == grpc::CompletionQueue::GOT_EVENT) {
      if (tag == &kick_tag_) {
        kicked = true;
      } else {
        --outstanding;
        static_cast<Tag*>(tag)->Completed(ok);
      }
    } else if (status == grpc::CompletionQueue::SHUTDOWN) {
      break;
    }
    if (ledger.config.rate > 0) SendDue(NowNs());
    // Only now, with the next intended time published, may the pacer look again.
    if (kicked) EndKick();
  }
  StopPacer();
  ledger.stats.spin_ns += spin_ns;  // the pacer's, now that it has stopped
  ledger.Publish();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

void Worker::Push(Connection* connection) {
  heap_.emplace_back(connection->NextDue(), connection);
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
}

// Sends every call due by `now`, connection by connection in order of intended time.
void Worker::SendDue(std::int64_t now) {
  while (!heap_.empty() && heap_.front().first <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    Connection* connection = heap_.back().second;
    heap_.pop_back();
    if (connection->done()) continue;
    connection->SendDue();
    if (connection->WantsToSend()) Push(connection);
  }
  PublishNextDue();
}

void Worker::PublishNextDue() {
  next_due_.store(heap_.empty() ? INT64_MAX : heap_.front().first, std::memory_order_release);
}

// The pacer thread: sleeps until the next intended time, then wakes the worker through its
// queue, and waits until the worker has sent what was due before looking again. Only a worker
// asleep in the queue is woken: one that is awake sends what is due at its next turn anyway,
// and a kick always waiting in the queue would starve its polling (a queue returns what it holds
// before it reads the sockets), so replies would never be read.
//
// As the RESP transport's --spin: it wakes spin_seconds early and spins to the exact time, since a
// sleeping thread wakes tens of microseconds late here; the time spun is reported, not counted
// as client load.
void Worker::Pace() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  while (!pacer_stop_.load(std::memory_order_acquire)) {
    const std::int64_t due = next_due_.load(std::memory_order_acquire);
    const std::int64_t now = NowNs();
    if (due > now + spin.ns()) {
      // At most 10 ms at a time, to see a stop (or the end of sending) promptly.
      const std::int64_t wake_ns = std::min(due - spin.ns(), now + 10'000'000);
      std::this_thread::sleep_until(ToTimePoint(wake_ns));
      spin.Woke(wake_ns, NowNs());
      continue;
    }
    if (due > now) {
      while (NowNs() < due && !pacer_stop_.load(std::memory_order_relaxed)) {
      }
      if (ledger.Measured(now)) spin_ns += NowNs() - now;
    }
    if (!sleeping_.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    if (!kick_pending_.exchange(true)) {
      kick_.Set(&cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), &kick_tag_);
    }
    // A condition variable, not atomic::wait: libstdc++'s spins on sched_yield first, which
    // showed as a third of the client's CPU at 2,000 calls/s.
    std::unique_lock lock(kick_mutex_);
    kick_done_.wait(lock, [this] { return !kick_pending_.load() || pacer_stop_.load(); });
  }
  pacer_exited_.store(true);
}

void Worker::EndKick() {
  {
    std::lock_guard lock(kick_mutex_);
    kick_pending_.store(false);
  }
  kick_done_.notify_one();
}

// Stops the pacer, taking the kick it may have set meanwhile out of the queue (its alarm must
// complete before the queue shuts down). Bounded: a kick completes at once.
void Worker::StopPacer() {
  if (!pacer_.joinable()) return;
  {
    std::lock_guard lock(kick_mutex_);
    pacer_stop_.store(true, std::memory_order_release);
  }
  kick_done_.notify_one();
  const std::int64_t give_up = NowNs() + 5'000'000'000;
  while (!pacer_exited_.load() || kick_pending_.load()) {
    if (NowNs() > give_up) break;
    if (!kick_pending_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    void* tag = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&tag, &ok, Deadline(NowNs() + 10'000'000)) ==
            grpc::CompletionQueue::GOT_EVENT &&
        tag == &kick_tag_) {
      EndKick();
    }
  }
  pacer_.join();
}

namespace {

// A plain TCP connect first: when nothing listens, the kernel's reason ("Connection refused")
// is a clearer one-line error than a gRPC channel state.
void CheckReachable(const std::string& host, std::uint16_t port, const std::string& target) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int resolved = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (resolved != 0) {
    throw std::runtime_error("cannot resolve " + target + ": " + gai_strerror(resolved));
  }
  std::string error = "no address";
  bool connected = false;
  for (addrinfo* address = found; address != nullptr && !connected; address = address->ai_next) {
    const int fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    connected = connect(fd, address->ai_addr, address->ai_addrlen) == 0;
    if (!connected) error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  if (!connected) throw std::runtime_error("cannot connect to " + target + ": " + error);
}

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "unknown";
}

}  // namespace
}  // namespace rpc

pb::LoadResult RunGrpcLoad(const LoadConfig& config, LiveStats* live) {
  using rpc::Connection, rpc::Worker;
  const unsigned threads = PrepareRun(config);
  const Workload workload = MakeWorkload(config);
  const std::string target = config.host + ":" + std::to_string(config.port);
  rpc::CheckReachable(config.host, config.port, target);

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(config, workload, live));
  }

  // Every channel READY before the clock starts, so that connection setup (TCP, the HTTP/2
  // preface and settings) is never measured, as the RESP transport connects everything first.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const unsigned own_connections = OwnConnections(config);
  for (unsigned own = 0; own < own_connections; ++own) {
    const unsigned c = RunConnection(config, own);
    grpc::ChannelArguments arguments;
    // A TCP connection of its own: without a local pool, channels to one target share one.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Differing arguments also keep gRPC from treating two channels as the same subchannel.
    arguments.SetInt("switchyard.connection", static_cast<int>(c));
    arguments.SetMaxReceiveMessageSize(-1);  // values up to --value-size's 512m come back
    arguments.SetMaxSendMessageSize(-1);
    // A call that fails is counted as failed, not silently retried.
    arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    channels.push_back(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
    channels.back()->GetState(/*try_to_connect=*/true);
  }
  const auto connect_deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
  for (unsigned c = 0; c < own_connections; ++c) {
    grpc_connectivity_state state = channels[c]->GetState(true);
    while (state != GRPC_CHANNEL_READY) {
      // TCP connected (CheckReachable), so a failure here is the HTTP/2 handshake: not gRPC.
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN ||
          !channels[c]->WaitForStateChange(state, connect_deadline)) {
        throw std::runtime_error("cannot connect to " + target + ": gRPC channel " +
                                 std::to_string(c + 1) + " of " + std::to_string(own_connections) +
                                 " not ready (" + rpc::StateName(channels[c]->GetState(false)) +
                                 "; is it a gRPC server?)");
      }
      state = channels[c]->GetState(true);
    }
  }
  for (unsigned own = 0; own < own_connections; ++own) {
    const unsigned c = RunConnection(config, own);
    Worker& worker = *workers[own % threads];
    worker.connections.push_back(std::make_unique<Connection>(
        worker, channels[own], ConnectionQuota(config, c), ConnectionSeed(config, c)));
  }
  channels.clear();  // the stubs hold them

  RunTotals run = RunWorkers(config, workers);
  const ThreadStats& total = run.merged;
  if (config.hold_idle_seconds > 0) {
    // Said on stderr whatever --quiet says: whoever measures the server waits for this line
    // (compare/servers.py reads it, with --warmup 0 so that every call is counted).
    std::fprintf(stderr,
                 "switchyard load: holding %u idle connections, %llu calls answered, for %gs "
                 "(Ctrl-C ends it)\n",
                 own_connections, static_cast<unsigned long long>(total.ok + total.errors),
                 config.hold_idle_seconds);
    const std::int64_t hold_end =
        NowNs() + static_cast<std::int64_t>(config.hold_idle_seconds * 1e9);
    while (!g_stop_requested && NowNs() < hold_end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  workers.clear();  // channels close here, before the result is reported

  return MakeResult(config, run);
}

}  // namespace switchyard::loadgen
