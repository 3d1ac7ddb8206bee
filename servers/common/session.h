// One client connection's protocol state, shared by every model: input, parser, replies.
// The model owns the socket and decides how to read, write and wait; the session only says which
// of those comes next. A model's connection loop is then:
//
//   for (;;) {
//     Step step = session.Process();
//     if the output is not empty: write session.output() fully, then session.OutputSent()
//     kNeedInput: read into session.ReadSpace(), then session.CommitRead(n) (close on EOF); a
//                 read that would block commits 0. A model that waits for readability does so
//                 before it asks for ReadSpace, so that it waits holding no buffer
//     kFlush:     nothing more (the output was large, so it was written before going on)
//     kWait:      wait step.wait the model's natural way, then session.FinishWait()
//     kClose:     close the connection
//   }
//
// The buffers are lent by the serving thread (io_buffers.h): Process gives the read buffer back
// when it asks for input with no partial request kept (as does committing 0 bytes), and
// OutputSent the reply buffer, so a connection that waits for its next request holds neither. A
// model that waits inside its read (a blocking recv) holds the read buffer while it waits; there
// the thread is the connection's anyway.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "servers/common/commands.h"
#include "servers/common/io_buffers.h"
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
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Free space at the end of the input (at least kReadChunk bytes), borrowing a read buffer if the
  // session holds none, and how much of it the last read filled. Committing 0 bytes (a read that
  // would block) with no partial request kept gives the buffer back.
  std::span<char> ReadSpace();
  void CommitRead(std::size_t bytes);

  // Runs every complete request in the input, in order, appending replies to output().
  Step Process();
  // Completes the SY.WAIT that Process returned kWait for: its reply and its metrics.
  void FinishWait();

  std::string& output() { return output_; }
  // The whole output was written: the reply buffer goes back to the thread.
  void OutputSent();

  // Asked by the model when writing the output to socket `fd` would block with `unwritten` bytes
  // left: true (and counted as a limit error) when the client owes more than
  // --output-buffer-bytes, and the model drops it instead of waiting.
  bool OwesTooMuch(int fd, std::size_t unwritten);
  std::uint64_t id() const { return connection_.id; }

  // The least free space a read is offered: a lent buffer's size. A read that fills it makes the
  // connection's buffer grow by doubling, so pipelines and large values still move in large reads.
  static constexpr std::size_t kReadChunk = io_buffers::kInputBytes;
  // Replies are written out once this much is pending, so a deep pipeline is answered in slices
  // rather than held whole.
  static constexpr std::size_t kFlushBytes = 64 * 1024;

 private:
  void CompactInput();
  void GiveBackInput();
  void BorrowOutput();
  void GiveBackOutput();

  ServerContext& context_;
  ConnectionState connection_;
  RespParser parser_;
  InputBuffer input_;            // none while no request is partial and no read is under way
  std::size_t input_begin_ = 0;  // parsed bytes before this are dead
  std::size_t input_end_ = 0;
  std::string output_;  // lent from the thread's cache while it holds replies
  // While output_ is lent, its capacity as io_buffers counted it then; kNotLent otherwise.
  static constexpr std::size_t kNotLent = static_cast<std::size_t>(-1);
  std::size_t output_counted_ = kNotLent;
  std::chrono::steady_clock::time_point wait_started_;
};

}  // namespace switchyard
