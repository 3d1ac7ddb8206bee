// The gRPC engine: T threads, each with its own grpc::CompletionQueue and its share of the
// connections. A connection is a channel of its own (its own TCP connection: a local subchannel
// pool and a channel argument that differs per connection, so gRPC never shares one). Calls are
// the asynchronous unary API: a call's completion comes back through its thread's queue, tagged
// with the call, and is matched to the time it was due.
//
// Open loop: each thread keeps its connections in a heap by next intended time and sends what is
// due whenever it wakes. gRPC's own timers (an Alarm's deadline, the queue's wait) have millisecond
// resolution, which would make every call up to a millisecond late and charge that to its
// latency (measured: a p50 schedule lag of 0.76 ms at 2,000/s). So a pacer thread per worker sleeps
// precisely (1 ns timer slack) until the next intended time and then wakes the worker through its
// own queue: a grpc::Alarm set with a deadline already past, which completes at once.
#include "loadgen/grpc_load.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "loadgen/spin_window.h"
#include "proto/kv.grpc.pb.h"

namespace switchyard::loadgen {
namespace {

// gRPC's deadlines are its own clock's: convert "at steady-clock ns" to "that far from now".
gpr_timespec Deadline(std::int64_t at_ns) {
  return gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC),
      gpr_time_from_nanos(std::max<std::int64_t>(0, at_ns - NowNs()), GPR_TIMESPAN));
}

// What comes back through a completion queue: a finished call or a fired (or cancelled) alarm.
class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Completed(bool ok) = 0;
};

class Worker;
class Connection;

// One call in flight. Only the reply of its own kind is used; the others stay empty (a default
// message is a few pointers), which keeps one allocation a call.
class Call final : public Tag {
 public:
  Call(Connection& connection, std::int64_t intended_ns, std::int64_t sent_ns)
      : connection(connection), intended_ns(intended_ns), sent_ns(sent_ns) {}
  void Completed(bool ok) override;
  // Whether an OK reply is the whole answer to its call: an MGet's holds a value (or found =
  // false) for every key. Another counts as an error, as the RESP engine counts an MGET's array of
  // the wrong length.
  bool Whole() const { return !mget_reader || mget.values_size() == mget_keys; }

  Connection& connection;
  const std::int64_t intended_ns, sent_ns;
  grpc::ClientContext context;
  grpc::Status status;
  kv::GetReply get;
  kv::SetReply set;
  kv::EchoReply echo;
  kv::IncrReply incr;
  kv::IncrByReply incr_by;
  kv::MGetReply mget;
  kv::MSetReply mset;
  kv::WorkReply work;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::GetReply>> get_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::SetReply>> set_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::EchoReply>> echo_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::IncrReply>> incr_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::IncrByReply>> incr_by_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::MGetReply>> mget_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::MSetReply>> mset_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kv::WorkReply>> work_reader;
  int mget_keys = 0;                          // an MGet's: the values its reply must hold
  Call *previous = nullptr, *next = nullptr;  // the connection's list of calls in flight
};

class Connection {
 public:
  Connection(Worker& worker, std::shared_ptr<grpc::Channel> channel, std::uint64_t quota,
             std::uint64_t seed)
      : worker_(worker), stub_(kv::Kv::NewStub(channel)), quota_(quota), random_(seed) {}
  void SetSchedule(Schedule schedule) { schedule_.emplace(schedule); }
  void Start();
  // Open loop: the next intended time, and whether a call is still to be sent at it.
  std::int64_t NextDue() const { return schedule_->Peek(); }
  bool WantsToSend() const { return schedule_ && Sending(schedule_->Peek()); }
  void SendDue();  // every call the schedule says is due by now
  // Open loop after Ctrl-C or the end of sending: finish once the replies owed are in.
  void FinishIfNothingMore() {
    if (!done_ && schedule_ && !Sending(schedule_->Peek())) FinishIfIdle();
  }
  void OnCallDone(Call* call);
  // Gives the connection up: calls in flight are cancelled and count as failed.
  void Fail(const std::string& why);
  void Abort() { Fail("replies still owed after --drain"); }
  bool done() const { return done_; }

 private:
  bool Sending(std::int64_t intended_ns) const;
  void StartCall(std::int64_t intended_ns, std::int64_t now);
  void FinishIfIdle();

  Worker& worker_;
  std::unique_ptr<kv::Kv::Stub> stub_;
  std::uint64_t quota_;
  Random random_;
  std::optional<Schedule> schedule_;
  Call* in_flight_ = nullptr;  // head of a doubly linked list
  std::size_t in_flight_count_ = 0;
  bool failing_ = false;
  bool done_ = false;
};

class Worker {
 public:
  Worker(const LoadConfig& config, const Workload& workload, LiveStats* live)
      : config(config), workload(workload), live_(live) {}

  void Run(std::int64_t start_ns) {
    warm_end_ns = start_ns + static_cast<std::int64_t>(config.warmup_seconds * 1e9);
    send_end_ns = config.requests != 0
                      ? INT64_MAX
                      : warm_end_ns + static_cast<std::int64_t>(config.duration_seconds * 1e9);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    std::this_thread::sleep_until(ToTimePoint(start_ns));
    for (auto& connection : connections) connection->Start();
    if (config.rate > 0) {
      for (auto& connection : connections) {
        if (connection->WantsToSend()) Push(connection.get());
      }
      PublishNextDue();
      // Busy-poll checks the heap on every turn of the loop and needs no pacer.
      if (!config.busy_poll) pacer_ = std::thread([this] { Pace(); });
    }
    std::int64_t next_tick = NowNs();
    // Until every connection is done and nothing of ours is left in the queue (a call still owed
    // its completion would come back to a destroyed object otherwise).
    while (done_connections_ < connections.size() || outstanding > 0) {
      const std::int64_t now = NowNs();
      if (now >= next_tick) {
        Tick(now);
        next_tick = now + 100'000'000;
      }
      void* tag = nullptr;
      bool ok = false;
      // Busy-poll: never sleep in the queue.
      sleeping_.store(true, std::memory_order_release);
      const auto status = cq.AsyncNext(
          &tag, &ok, config.busy_poll ? gpr_inf_past(GPR_CLOCK_MONOTONIC) : Deadline(next_tick));
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
      if (config.rate > 0) SendDue(NowNs());
      // Only now, with the next intended time published, may the pacer look again.
      if (kicked) EndKick();
    }
    StopPacer();
    stats.spin_ns += spin_ns;  // the pacer's, now that it has stopped
    Publish();
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
  }

  void ConnectionDone() { ++done_connections_; }
  std::int64_t spin_ns = 0;  // the pacer's time spinning to send times; read after it is joined

  // What the kick alarm's completion is recognised by; never dereferenced.
  class KickTag final : public Tag {
    void Completed(bool) override {}
  };

  grpc::CompletionQueue cq;
  std::size_t outstanding = 0;  // calls whose completion is still to come
  const LoadConfig& config;
  const Workload& workload;
  SpinWindow spin{SpinWindowNs(config.spin_seconds)};  // the pacer's, learned as it sleeps
  std::vector<std::unique_ptr<Connection>> connections;
  ThreadStats stats;
  std::int64_t warm_end_ns = 0;
  std::int64_t send_end_ns = 0;

 private:
  // As the RESP engine's tick: honour Ctrl-C, give up on replies overdue once sending has
  // stopped, publish live figures.
  void Tick(std::int64_t now) {
    if (g_stop_requested.load(std::memory_order_relaxed) && send_end_ns > now) send_end_ns = now;
    if (send_end_ns != INT64_MAX &&
        now > send_end_ns + static_cast<std::int64_t>(config.drain_seconds * 1e9)) {
      for (auto& connection : connections) connection->Abort();
    }
    // After Ctrl-C an open-loop connection's next time may lie far ahead (a low rate): those
    // with nothing more to send finish here rather than when that time comes.
    for (auto& connection : connections) connection->FinishIfNothingMore();
    Publish();
  }

  void Publish() {
    if (live_ != nullptr) stats.PublishTo(*live_, NowNs() >= warm_end_ns);
  }

  void Push(Connection* connection) {
    heap_.emplace_back(connection->NextDue(), connection);
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }

  // Sends every call due by `now`, connection by connection in order of intended time.
  void SendDue(std::int64_t now) {
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

  void PublishNextDue() {
    next_due_.store(heap_.empty() ? INT64_MAX : heap_.front().first, std::memory_order_release);
  }

  // The pacer thread: sleeps until the next intended time, then wakes the worker through its
  // queue, and waits until the worker has sent what was due before looking again. Only a worker
  // asleep in the queue is woken: one that is awake sends what is due at its next turn anyway,
  // and a kick always waiting in the queue would starve its polling (a queue returns what it holds
  // before it reads the sockets), so replies would never be read.
  //
  // As the RESP engine's --spin: it wakes spin_seconds early and spins to the exact time, since a
  // sleeping thread wakes tens of microseconds late here; the time spun is reported, not counted
  // as client load.
  void Pace() {
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
        if (now >= warm_end_ns) spin_ns += NowNs() - now;
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

  void EndKick() {
    {
      std::lock_guard lock(kick_mutex_);
      kick_pending_.store(false);
    }
    kick_done_.notify_one();
  }

  // Stops the pacer, taking the kick it may have set meanwhile out of the queue (its alarm must
  // complete before the queue shuts down). Bounded: a kick completes at once.
  void StopPacer() {
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

  LiveStats* live_;
  std::size_t done_connections_ = 0;
  // Open loop: connections by next intended time (a min-heap), and what the pacer needs.
  std::vector<std::pair<std::int64_t, Connection*>> heap_;
  std::atomic<std::int64_t> next_due_{INT64_MAX};
  std::thread pacer_;
  std::atomic<bool> pacer_stop_{false}, pacer_exited_{false}, kick_pending_{false};
  std::atomic<bool> sleeping_{false};
  std::mutex kick_mutex_;  // with kick_done_: the pacer waits for the worker to take its kick
  std::condition_variable kick_done_;  // the worker is in (or about to enter) AsyncNext
  grpc::Alarm kick_;
  KickTag kick_tag_;
};

void Call::Completed(bool) { connection.OnCallDone(this); }

void Connection::Start() {
  if (quota_ == 0) {
    FinishIfIdle();
    return;
  }
  // Closed loop: the first --pipeline calls. Open loop: the worker sends as the schedule says.
  if (!schedule_) {
    const std::int64_t now = NowNs();
    for (unsigned i = 0; i < worker_.config.pipeline && Sending(now); ++i) StartCall(now, now);
  }
}

bool Connection::Sending(std::int64_t intended_ns) const {
  return !done_ && !failing_ && quota_ > 0 && intended_ns < worker_.send_end_ns;
}

void Connection::SendDue() {
  const std::int64_t now = NowNs();
  ThreadStats& stats = worker_.stats;
  // A late wake-up starts every call that fell due meanwhile, each stamped with its own intended
  // time, so the lateness is charged to the latency (coordinated-omission correction).
  while (schedule_->Peek() <= now && Sending(schedule_->Peek())) {
    const std::int64_t intended = schedule_->Next();
    StartCall(intended, now);
    if (intended >= worker_.warm_end_ns) {
      const std::int64_t lag = now - intended;
      stats.schedule_lag.Record(static_cast<std::uint64_t>(lag));
      stats.max_lag_interval_ns = std::max(stats.max_lag_interval_ns, lag);
    }
  }
  FinishIfIdle();
}

void Connection::StartCall(std::int64_t intended_ns, std::int64_t now) {
  auto* call = new Call(*this, intended_ns, now);
  thread_local Workload::Request request;  // its keys' memory reused from call to call
  worker_.workload.ChooseRequest(random_, &request);
  grpc::CompletionQueue* cq = &worker_.cq;
  switch (request.kind) {
    case CommandKind::kGet: {
      kv::GetRequest message;
      message.set_key(request.keys[0]);
      call->get_reader = stub_->AsyncGet(&call->context, message, cq);
      call->get_reader->Finish(&call->get, &call->status, call);
      break;
    }
    case CommandKind::kSet: {
      kv::SetRequest message;
      message.set_key(request.keys[0]);
      message.set_value(request.values[0].data(), request.values[0].size());
      call->set_reader = stub_->AsyncSet(&call->context, message, cq);
      call->set_reader->Finish(&call->set, &call->status, call);
      break;
    }
    case CommandKind::kEcho:
    case CommandKind::kPing: {
      // PING has no RPC of its own: an Echo of nothing is the smallest round trip kv.proto has.
      kv::EchoRequest message;
      if (request.kind == CommandKind::kEcho)
        message.set_message(request.values[0].data(), request.values[0].size());
      call->echo_reader = stub_->AsyncEcho(&call->context, message, cq);
      call->echo_reader->Finish(&call->echo, &call->status, call);
      break;
    }
    case CommandKind::kIncr: {
      kv::IncrRequest message;
      message.set_key(request.keys[0]);
      call->incr_reader = stub_->AsyncIncr(&call->context, message, cq);
      call->incr_reader->Finish(&call->incr, &call->status, call);
      break;
    }
    case CommandKind::kIncrBy: {
      kv::IncrByRequest message;
      message.set_key(request.keys[0]);
      message.set_delta(request.delta);
      call->incr_by_reader = stub_->AsyncIncrBy(&call->context, message, cq);
      call->incr_by_reader->Finish(&call->incr_by, &call->status, call);
      break;
    }
    case CommandKind::kMGet: {
      kv::MGetRequest message;
      for (const std::string& key : request.keys) message.add_keys(key);
      call->mget_keys = static_cast<int>(request.keys.size());
      call->mget_reader = stub_->AsyncMGet(&call->context, message, cq);
      call->mget_reader->Finish(&call->mget, &call->status, call);
      break;
    }
    case CommandKind::kMSet: {
      kv::MSetRequest message;
      for (std::size_t i = 0; i < request.keys.size(); ++i) {
        kv::KeyValue* pair = message.add_pairs();
        pair->set_key(request.keys[i]);
        pair->set_value(request.values[i].data(), request.values[i].size());
      }
      call->mset_reader = stub_->AsyncMSet(&call->context, message, cq);
      call->mset_reader->Finish(&call->mset, &call->status, call);
      break;
    }
    case CommandKind::kSyCpu:
    case CommandKind::kSyWait:
    case CommandKind::kSyBlock: {
      kv::WorkRequest message;
      message.set_kind(request.kind == CommandKind::kSyCpu    ? kv::WorkRequest::CPU
                       : request.kind == CommandKind::kSyWait ? kv::WorkRequest::WAIT
                                                              : kv::WorkRequest::BLOCK);
      message.set_micros(static_cast<std::int64_t>(request.micros));
      call->work_reader = stub_->AsyncWork(&call->context, message, cq);
      call->work_reader->Finish(&call->work, &call->status, call);
      break;
    }
  }
  ++worker_.outstanding;
  call->next = in_flight_;
  if (in_flight_ != nullptr) in_flight_->previous = call;
  in_flight_ = call;
  ++in_flight_count_;
  --quota_;
  if (intended_ns >= worker_.warm_end_ns) {
    ++worker_.stats.sent;
    worker_.stats.last_send_ns = now;
  }
}

void Connection::OnCallDone(Call* call) {
  if (call->previous != nullptr) call->previous->next = call->next;
  if (call->next != nullptr) call->next->previous = call->previous;
  if (in_flight_ == call) in_flight_ = call->next;
  --in_flight_count_;
  const std::unique_ptr<Call> owned(call);
  const std::int64_t now = NowNs();
  ThreadStats& stats = worker_.stats;
  const grpc::StatusCode code = call->status.error_code();
  // UNAVAILABLE is the transport failing (connection lost or refused, server going away);
  // CANCELLED is a call cut off, by us on giving up or by the server stopping. Neither is an
  // answer: they count as failed, as a request lost with its RESP connection does. Any other
  // status is the server's answer, an error reply like -ERR.
  const bool answered =
      code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::CANCELLED;
  const bool measured = call->intended_ns >= worker_.warm_end_ns;
  if (!answered) {
    if (measured) ++stats.failed;
    if (!failing_)
      Fail(call->status.error_message().empty() ? "the call failed" : call->status.error_message());
  } else if (measured) {
    const auto latency = static_cast<std::uint64_t>(now - call->intended_ns);
    stats.latency.Record(latency);
    stats.latency_interval.Record(latency);
    stats.uncorrected.Record(static_cast<std::uint64_t>(now - call->sent_ns));
    ++(code == grpc::StatusCode::OK && call->Whole() ? stats.ok : stats.errors);
    stats.last_reply_ns = now;
  }
  if (!schedule_ && answered && Sending(now)) StartCall(now, now);
  FinishIfIdle();
}

void Connection::FinishIfIdle() {
  if (done_ || in_flight_count_ > 0) return;
  const std::int64_t next = schedule_ ? schedule_->Peek() : NowNs();
  if (Sending(next)) return;
  done_ = true;
  worker_.ConnectionDone();
}

void Connection::Fail(const std::string& why) {
  if (done_ || failing_) return;
  if (worker_.stats.connections_lost++ == 0) worker_.stats.first_loss = why;
  failing_ = true;
  quota_ = 0;
  // The calls still in flight come back CANCELLED (or answered, if the reply won the race).
  for (Call* call = in_flight_; call != nullptr; call = call->next) call->context.TryCancel();
  FinishIfIdle();
}

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

pb::LoadResult RunGrpcLoad(const LoadConfig& config, LiveStats* live) {
  const unsigned threads = PrepareRun(config);
  const Workload workload(ParseMix(config.mix), config.keys, config.key_dist,
                          ParseSizeRange(config.value_size));

  const std::string target = config.host + ":" + std::to_string(config.port);
  CheckReachable(config.host, config.port, target);

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(config, workload, live));
  }

  // Every channel READY before the clock starts, so that connection setup (TCP, the HTTP/2
  // preface and settings) is never measured, as the RESP engine connects everything first.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (unsigned c = 0; c < config.connections; ++c) {
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
  for (unsigned c = 0; c < config.connections; ++c) {
    grpc_connectivity_state state = channels[c]->GetState(true);
    while (state != GRPC_CHANNEL_READY) {
      // TCP connected (CheckReachable), so a failure here is the HTTP/2 handshake: not gRPC.
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN ||
          !channels[c]->WaitForStateChange(state, connect_deadline)) {
        throw std::runtime_error(
            "cannot connect to " + target + ": gRPC channel " + std::to_string(c + 1) + " of " +
            std::to_string(config.connections) + " not ready (" +
            StateName(channels[c]->GetState(false)) + "; is it a gRPC server?)");
      }
      state = channels[c]->GetState(true);
    }
  }
  for (unsigned c = 0; c < config.connections; ++c) {
    Worker& worker = *workers[c % threads];
    const std::uint64_t quota = config.requests == 0
                                    ? UINT64_MAX
                                    : config.requests / config.connections +
                                          (c < config.requests % config.connections ? 1 : 0);
    worker.connections.push_back(
        std::make_unique<Connection>(worker, channels[c], quota, 0xc0ffee00 + c));
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
                 config.connections, static_cast<unsigned long long>(total.ok + total.errors),
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
