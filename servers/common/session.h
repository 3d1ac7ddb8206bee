// One client connection's protocol state, shared by every model: input buffer, parser, replies.
// The model owns the socket and decides how to read, write and wait; the session only says which
// of those comes next. A model's connection loop is then:
//
//   for (;;) {
//     Step step = session.Process();
//     write session.output() fully, then session.output().clear();
//     kNeedInput: read into session.ReadSpace(), then session.CommitRead(n) (close on EOF)
//     kFlush:     nothing more (the output was large, so it was written before going on)
//     kWait:      wait step.wait the model's natural way, then session.FinishWait()
//     kClose:     close the connection
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "servers/common/commands.h"
#include "servers/common/resp_parser.h"
#include "servers/common/server_context.h"

namespace switchyard {

class Session {
 public:
  enum class Next { kNeedInput, kFlush, kWait, kClose };
  struct Step {
    Next next;
    std::chrono::microseconds wait{0};
  };

  explicit Session(ServerContext& context);

  // Free space at the end of the input buffer (at least kReadChunk bytes) and how much of it the
  // last read filled.
  std::span<char> ReadSpace();
  void CommitRead(std::size_t bytes);

  // Runs every complete request in the input, in order, appending replies to output().
  Step Process();
  // Completes the SY.WAIT that Process returned kWait for: its reply and its metrics.
  void FinishWait();

  std::string& output() { return output_; }

  // Asked by the model when writing the output to socket `fd` would block with `unwritten` bytes
  // left: true (and counted as a limit error) when the client owes more than
  // --output-buffer-bytes, and the model drops it instead of waiting.
  bool OwesTooMuch(int fd, std::size_t unwritten);
  std::uint64_t id() const { return connection_.id; }

  // The least free space a read is offered. Small on purpose: an idle connection holds this
  // buffer, and memory per connection is one of the figures the models are compared on. A read
  // that fills the buffer makes it grow by doubling, so pipelines and large values still move in
  // large reads.
  static constexpr std::size_t kReadChunk = 4 * 1024;
  // Buffers grown past this by a large request or reply are released once empty again.
  static constexpr std::size_t kKeepBytes = 64 * 1024;
  // Replies are written out once this much is pending, so a deep pipeline is answered in slices
  // rather than held whole.
  static constexpr std::size_t kFlushBytes = 64 * 1024;

 private:
  void CompactInput();
  void ReleaseLargeBuffers();

  ServerContext& context_;
  ConnectionState connection_;
  RespParser parser_;
  std::vector<char> input_;
  std::size_t input_begin_ = 0;  // parsed bytes before this are dead
  std::size_t input_end_ = 0;
  std::vector<std::string> args_;
  std::string output_;
  std::chrono::steady_clock::time_point wait_started_;
};

}  // namespace switchyard
