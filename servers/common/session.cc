#include "servers/common/session.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "servers/common/net.h"
#include "servers/common/resp_writer.h"
#include "servers/common/run_queue_wait.h"

namespace switchyard {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Session::Session(ServerContext& context)
    : context_(context),
      connection_{context.metrics.NewConnectionId(), {}},
      parser_(ParserLimits{context.config.max_bulk_bytes, context.config.max_inline_bytes}) {
  // Whatever thread serves a connection, its wait for a CPU outlives it in the metrics.
  RunQueueWait::WatchThisThread();
}

std::span<char> Session::ReadSpace() {
  if (input_.size() - input_end_ < kReadChunk) {
    CompactInput();
    if (input_.size() - input_end_ < kReadChunk) {
      input_.resize(std::max(input_end_ + kReadChunk, input_.size() * 2));
    }
  }
  return {input_.data() + input_end_, input_.size() - input_end_};
}

void Session::CommitRead(std::size_t bytes) { input_end_ += bytes; }

void Session::CompactInput() {
  if (input_begin_ == 0) return;
  std::memmove(input_.data(), input_.data() + input_begin_, input_end_ - input_begin_);
  input_end_ -= input_begin_;
  input_begin_ = 0;
}

void Session::ReleaseLargeBuffers() {
  if (input_begin_ == input_end_ && input_.size() > kKeepBytes) std::vector<char>().swap(input_);
  if (output_.empty() && output_.capacity() > kKeepBytes) std::string().swap(output_);
}

Session::Step Session::Process() {
  const ServerConfig& config = context_.config;
  ReleaseLargeBuffers();
  for (;;) {
    if (config.output_buffer_bytes != 0 && output_.size() > config.output_buffer_bytes) {
      // Redis's client-output-buffer-limit: the client is not keeping up, so it is dropped.
      context_.metrics.RecordError(ErrorKind::kLimit);
      output_.clear();
      return {Next::kClose};
    }
    if (output_.size() >= kFlushBytes) return {Next::kFlush};

    std::size_t consumed = 0;
    const std::string_view unparsed(input_.data() + input_begin_, input_end_ - input_begin_);
    const auto result = parser_.Parse(unparsed, &consumed, &args_);
    input_begin_ += consumed;
    if (input_begin_ == input_end_) input_begin_ = input_end_ = 0;

    if (result == RespParser::Result::kError) {
      context_.metrics.RecordError(ErrorKind::kProtocol);
      resp::AppendError(&output_, parser_.error());
      return {Next::kClose};  // as Redis does: after a protocol error nothing can be trusted
    }
    if (result == RespParser::Result::kNeedMore) {
      if (input_end_ - input_begin_ + parser_.buffered_bytes() > config.query_buffer_bytes) {
        // Redis closes such a client without a reply; so do we (the log says why).
        context_.metrics.RecordError(ErrorKind::kLimit);
        return {Next::kClose};
      }
      return {Next::kNeedInput};
    }

    // --no-request-metrics skips the clock reads too: they are part of what counting costs.
    const bool timed = config.request_metrics;
    const auto started = timed ? std::chrono::steady_clock::now() : wait_started_;
    CommandId id = CommandId::kUnknown;
    const CommandOutcome outcome = ExecuteCommand(context_, args_, connection_, &id, &output_);
    if (outcome.kind == CommandOutcome::Kind::kWait) {
      wait_started_ = started;
      return {Next::kWait, outcome.wait};
    }
    if (timed) context_.metrics.RecordRequest(static_cast<std::size_t>(id), SecondsSince(started));
    if (outcome.kind == CommandOutcome::Kind::kClose) return {Next::kClose};
  }
}

bool Session::OwesTooMuch(int fd, std::size_t unwritten) {
  if (!OverOutputLimit(fd, unwritten, context_.config.output_buffer_bytes)) return false;
  context_.metrics.RecordError(ErrorKind::kLimit);
  return true;
}

void Session::FinishWait() {
  resp::AppendSimple(&output_, "OK");
  if (!context_.config.request_metrics) return;
  context_.metrics.RecordRequest(static_cast<std::size_t>(CommandId::kSyWait),
                                 SecondsSince(wait_started_));
}

}  // namespace switchyard
