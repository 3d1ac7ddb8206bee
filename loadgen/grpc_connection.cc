// The gRPC connection (grpc_engine.h): each request of the workload as its kv.proto call, started
// as the connection's ledger allows, and each completion booked: an answer (OK, or the server's
// error status), or a failure (the transport lost, the call cancelled).
#include <memory>

#include "loadgen/grpc_engine.h"

namespace switchyard::loadgen::rpc {

Connection::Connection(Worker& worker, std::shared_ptr<grpc::Channel> channel, std::uint64_t quota,
                       std::uint64_t seed)
    : worker_(worker),
      ledger_(worker.ledger, quota),
      stub_(kv::Kv::NewStub(channel)),
      random_(seed) {}

void Call::Completed(bool) { connection.OnCallDone(this); }

void Connection::Start() {
  FinishIfIdle();  // nothing to send at all (a --requests share of none)
  // Closed loop: the first --pipeline calls. Open loop: the worker sends as the schedule says.
  if (ledger_.done() || ledger_.open_loop()) return;
  const std::int64_t now = NowNs();
  for (unsigned i = 0; i < worker_.ledger.config.pipeline && ledger_.TakeNow(now); ++i) {
    StartCall(now, now);
  }
}

void Connection::SendDue() {
  const std::int64_t now = NowNs();
  for (std::int64_t intended; ledger_.TakeDue(now, &intended);) StartCall(intended, now);
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
}

void Connection::OnCallDone(Call* call) {
  if (call->previous != nullptr) call->previous->next = call->next;
  if (call->next != nullptr) call->next->previous = call->previous;
  if (in_flight_ == call) in_flight_ = call->next;
  --in_flight_count_;
  const std::unique_ptr<Call> owned(call);
  const std::int64_t now = NowNs();
  const grpc::StatusCode code = call->status.error_code();
  // UNAVAILABLE is the transport failing (connection lost or refused, server going away);
  // CANCELLED is a call cut off, by us on giving up or by the server stopping. Neither is an
  // answer: they count as failed, as a request lost with its RESP connection does. Any other
  // status is the server's answer, an error reply like -ERR.
  const bool answered =
      code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::CANCELLED;
  const bool measured = worker_.ledger.Measured(call->intended_ns);
  if (!answered) {
    if (measured) ++worker_.ledger.stats.failed;
    if (!ledger_.lost())
      Fail(call->status.error_message().empty() ? "the call failed" : call->status.error_message());
  } else if (measured) {
    worker_.ledger.RecordLatencies(static_cast<std::uint64_t>(now - call->intended_ns),
                                   static_cast<std::uint64_t>(now - call->sent_ns), 1);
    worker_.ledger.CountReply(code != grpc::StatusCode::OK || !call->Whole(), now);
  }
  if (!ledger_.open_loop() && answered && ledger_.TakeNow(now)) StartCall(now, now);
  FinishIfIdle();
}

void Connection::Fail(const std::string& why) {
  if (!ledger_.Lose(why)) return;
  // The calls still in flight come back CANCELLED (or answered, if the reply won the race).
  for (Call* call = in_flight_; call != nullptr; call = call->next) call->context.TryCancel();
  FinishIfIdle();
}

}  // namespace switchyard::loadgen::rpc
