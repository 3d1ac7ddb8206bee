#include "servers/common/session.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "servers/common/net.h"
#include "servers/common/resp_writer.h"
#include "servers/common/run_queue_wait.h"

namespace switchyard {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The arguments of the command being run: the thread's, not the connection's, since a command is
// parsed and run without a wait in between (the parser keeps a partial one itself).
std::vector<std::string>& ThreadArgs() {
  thread_local std::vector<std::string> args;
  return args;
}

}  // namespace

Session::Session(ServerContext& context)
    : context_(context),
      connection_{context.metrics.NewConnectionId(), {}},
      parser_(ParserLimits{context.config.max_bulk_bytes, context.config.max_inline_bytes}) {
  // Whatever thread serves a connection, its wait for a CPU outlives it in the metrics.
  RunQueueWait::WatchThisThread();
}

Session::~Session() {
  GiveBackInput();
  GiveBackOutput();
}

std::span<char> Session::ReadSpace() {
  if (input_.bytes == nullptr) input_ = io_buffers::TakeInput();
  if (input_.size - input_end_ < kReadChunk) {
    CompactInput();
    if (input_.size - input_end_ < kReadChunk) {
      InputBuffer grown = io_buffers::NewInput(std::max(input_end_ + kReadChunk, input_.size * 2));
      std::memcpy(grown.bytes.get(), input_.bytes.get(), input_end_);
      io_buffers::GiveBack(std::exchange(input_, std::move(grown)));
    }
  }
  return {input_.bytes.get() + input_end_, input_.size - input_end_};
}

void Session::CommitRead(std::size_t bytes) {
  input_end_ += bytes;
  if (input_end_ == 0) GiveBackInput();  // nothing arrived and nothing is partial: wait without it
}

void Session::CompactInput() {
  if (input_begin_ == 0) return;
  std::memmove(input_.bytes.get(), input_.bytes.get() + input_begin_, input_end_ - input_begin_);
  input_end_ -= input_begin_;
  input_begin_ = 0;
}

void Session::GiveBackInput() {
  io_buffers::GiveBack(std::move(input_));
  input_ = {};
  input_begin_ = input_end_ = 0;
}

void Session::BorrowOutput() {
  if (output_counted_ != kNotLent) return;
  if (output_.empty()) {
    output_ = io_buffers::TakeOutput(&output_counted_);
    return;
  }
  std::string lent = io_buffers::TakeOutput(&output_counted_);
  lent.append(output_);  // what was written without it (a reply finishing a wait)
  output_ = std::move(lent);
}

void Session::OutputSent() {
  output_.clear();
  GiveBackOutput();
}

void Session::GiveBackOutput() {
  if (output_counted_ == kNotLent) return;
  io_buffers::GiveBack(std::move(output_), output_counted_);
  output_ = {};
  output_counted_ = kNotLent;
}

Session::Step Session::Process() {
  const ServerConfig& config = context_.config;
  std::vector<std::string>& args = ThreadArgs();
  // A buffer a large request grew is freed once empty, even by a model that waits inside its read
  // and so never commits an empty one.
  if (input_end_ == 0 && input_.size > io_buffers::kKeepBytes) GiveBackInput();
  for (;;) {
    if (config.output_buffer_bytes != 0 && output_.size() > config.output_buffer_bytes) {
      // Redis's client-output-buffer-limit: the client is not keeping up, so it is dropped.
      context_.metrics.RecordError(ErrorKind::kLimit);
      output_.clear();
      return {Next::kClose};
    }
    if (output_.size() >= kFlushBytes) return {Next::kFlush};

    std::size_t consumed = 0;
    const std::string_view unparsed(input_.bytes.get() + input_begin_, input_end_ - input_begin_);
    const auto result = parser_.Parse(unparsed, &consumed, &args);
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
      // Nothing partial is kept: the read buffer goes back to the thread before the model waits,
      // and is borrowed again for the next read.
      if (input_end_ == 0) GiveBackInput();
      if (output_.empty()) GiveBackOutput();
      return {Next::kNeedInput};
    }

    // --no-request-metrics skips the clock reads too: they are part of what counting costs.
    const bool timed = config.request_metrics;
    const auto started = timed ? std::chrono::steady_clock::now() : wait_started_;
    BorrowOutput();
    CommandId id = CommandId::kUnknown;
    const CommandOutcome outcome = ExecuteCommand(context_, args, connection_, &id, &output_);
    args.clear();  // a large value's copy is not kept by the thread until its next command
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
  BorrowOutput();
  resp::AppendSimple(&output_, "OK");
  if (!context_.config.request_metrics) return;
  context_.metrics.RecordRequest(static_cast<std::size_t>(CommandId::kSyWait),
                                 SecondsSince(wait_started_));
}

}  // namespace switchyard
