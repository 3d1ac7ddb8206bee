// The gRPC transport's parts, shared by its two files: a call, a connection (a channel of its own)
// that starts calls as its ledger allows and books their completions (grpc_connection.cc), and the
// thread that drives its connections through one completion queue, with a pacer thread for open
// loop (grpc_transport.cc). Private to them: gRPC's headers stay out of everything else.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loadgen/ledger.h"
#include "loadgen/spin_window.h"
#include "loadgen/workload.h"
#include "proto/kv.grpc.pb.h"

namespace switchyard::loadgen::rpc {

// gRPC's deadlines are its own clock's: convert "at steady-clock ns" to "that far from now".
inline gpr_timespec Deadline(std::int64_t at_ns) {
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
  // false) for every key. Another counts as an error, as the RESP transport counts an MGET's array
  // of the wrong length.
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
             std::uint64_t seed);
  void SetSchedule(Schedule schedule) { ledger_.SetSchedule(schedule); }
  void Start();
  // Open loop: the next intended time, and whether a call is still to be sent at it.
  std::int64_t NextDue() const { return ledger_.NextDue(); }
  bool WantsToSend() const { return ledger_.WantsToSend(); }
  void SendDue();  // every call the schedule says is due by now
  // Open loop after Ctrl-C or the end of sending: finish once the replies owed are in.
  void FinishIfNothingMore() {
    if (ledger_.NothingMoreToSend()) FinishIfIdle();
  }
  void OnCallDone(Call* call);
  // Gives the connection up: calls in flight are cancelled and count as failed.
  void Fail(const std::string& why);
  void Abort() { Fail("replies still owed after --drain"); }
  bool done() const { return ledger_.done(); }

 private:
  void StartCall(std::int64_t intended_ns, std::int64_t now);
  void FinishIfIdle() { ledger_.Finish(in_flight_count_); }

  Worker& worker_;
  ConnectionLedger ledger_;
  std::unique_ptr<kv::Kv::Stub> stub_;
  Random random_;
  Call* in_flight_ = nullptr;  // head of a doubly linked list
  std::size_t in_flight_count_ = 0;
};

class Worker {
 public:
  Worker(const LoadConfig& config, const Workload& workload, LiveStats* live)
      : ledger(config, live), workload(workload) {}

  // Runs this thread's connections from `start_ns` until every one is done and every call of
  // theirs has completed.
  void Run(std::int64_t start_ns);

  std::int64_t spin_ns = 0;  // the pacer's time spinning to send times; read after it is joined

  // What the kick alarm's completion is recognised by; never dereferenced.
  class KickTag final : public Tag {
    void Completed(bool) override {}
  };

  grpc::CompletionQueue cq;
  std::size_t outstanding = 0;  // calls whose completion is still to come
  ThreadLedger ledger;
  const Workload& workload;
  SpinWindow spin{SpinWindowNs(ledger.config.spin_seconds)};  // the pacer's, learned as it sleeps
  std::vector<std::unique_ptr<Connection>> connections;

 private:
  void Push(Connection* connection);
  void SendDue(std::int64_t now);
  void PublishNextDue();
  void Pace();
  void EndKick();
  void StopPacer();

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

}  // namespace switchyard::loadgen::rpc
