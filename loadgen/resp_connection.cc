// The RESP connection (resp_engine.h): requests written as they are taken from its ledger, replies
// parsed as they come and matched in order against the requests in flight. Open loop, each read
// takes the kernel's receive time with it, which says how long the replies waited for this thread.
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "loadgen/resp_engine.h"
#include "loadgen/resp_reply.h"

namespace switchyard::loadgen::resp {

Connection::Connection(Worker& worker, tcp::socket socket, std::uint64_t quota, std::uint64_t seed)
    : worker_(worker),
      ledger_(worker.ledger, quota),
      socket_(std::move(socket)),
      random_(seed),
      in_(64 * 1024) {}

void Connection::Start() {
  FinishIfIdle();  // nothing to send at all (a --requests share of none)
  if (ledger_.done()) return;
  if (ledger_.open_loop()) {
    const int on = 1;
    stamped_reads_ =
        setsockopt(socket_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  }
  DoRead();
  if (ledger_.open_loop()) {
    WaitForNextSend();
  } else {
    SendClosedLoop(worker_.ledger.config.pipeline, NowNs());
  }
}

void Connection::WaitForNextSend() {
  if (!ledger_.WantsToSend()) {
    FinishIfIdle();
    return;
  }
  if (worker_.ledger.config.busy_poll) return;  // the worker's loop polls the schedule
  worker_.WakeAt(ledger_.NextDue() - worker_.spin.ns(), this);
}

void Connection::SendDue() {
  const std::int64_t now = NowNs();
  for (std::int64_t intended; ledger_.TakeDue(now, &intended);) {
    in_flight_.Push({intended, now, worker_.workload.AppendRequest(out_, random_)});
    worker_.RequestSent(now);
  }
  Flush();
  FinishIfIdle();
}

void Connection::SendClosedLoop(std::size_t count, std::int64_t now) {
  for (std::size_t i = 0; i < count && ledger_.TakeNow(now); ++i) {
    in_flight_.Push({now, now, worker_.workload.AppendRequest(out_, random_)});
    worker_.RequestSent(now);
  }
  Flush();
}

// Writes at once when the socket takes it (the common case: one system call, no handler), and
// falls back to an asynchronous write for what the kernel could not take.
void Connection::Flush() {
  if (write_in_progress_ || out_.empty() || ledger_.done()) return;
  std::error_code error;
  const std::size_t written = socket_.write_some(asio::buffer(out_), error);
  if (error && error != asio::error::would_block) {
    Fail(error.message());
    return;
  }
  out_.erase(0, written);
  if (!out_.empty()) DoWrite();
}

void Connection::DoWrite() {
  write_in_progress_ = true;
  writing_.swap(out_);
  out_.clear();
  asio::async_write(socket_, asio::buffer(writing_), [this](std::error_code error, std::size_t) {
    write_in_progress_ = false;
    if (ledger_.done()) return;
    if (error) {
      Fail(error.message());
      return;
    }
    writing_.clear();
    if (!out_.empty()) DoWrite();
  });
}

void Connection::DoRead() {
  if (in_used_ == in_.size()) {
    // A reply larger than the buffer: grow, within reason.
    if (in_.size() >= (std::size_t{1} << 30)) {
      Fail("a reply over 1 GiB");
      return;
    }
    in_.resize(in_.size() * 2);
  }
  if (stamped_reads_) {
    // Waits, then reads with recvmsg for the timestamp (asio's reads drop control messages).
    // The wait costs an epoll_ctl each time, so closed loop, where CPU a request is judged,
    // keeps asio's read.
    socket_.async_wait(tcp::socket::wait_read, [this](std::error_code error) {
      if (ledger_.done()) return;
      if (error) {
        Fail(error.message());
        return;
      }
      ReadStamped();
    });
    return;
  }
  socket_.async_read_some(
      asio::buffer(in_.data() + in_used_, in_.size() - in_used_),
      [this](std::error_code error, std::size_t received) {
        if (ledger_.done()) return;
        if (error) {  // EOF included: the server closed the connection
          Fail(error == asio::error::eof ? "closed by the server" : error.message());
          return;
        }
        OnReceived(received, -1);
      });
}

void Connection::ReadStamped() {
  iovec space{in_.data() + in_used_, in_.size() - in_used_};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr message{};
  message.msg_iov = &space;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t received = recvmsg(socket_.native_handle(), &message, MSG_DONTWAIT);
  if (received < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      DoRead();
    } else {
      Fail(std::strerror(errno));
    }
    return;
  }
  if (received == 0) {
    Fail("closed by the server");
    return;
  }
  // The time the last segment read reached this socket (CLOCK_REALTIME, as the kernel stamps).
  std::int64_t pickup_ns = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec arrived{}, now{};
    std::memcpy(&arrived, CMSG_DATA(c), sizeof arrived);
    clock_gettime(CLOCK_REALTIME, &now);
    pickup_ns = std::max<std::int64_t>(
        0, (now.tv_sec - arrived.tv_sec) * 1'000'000'000LL + (now.tv_nsec - arrived.tv_nsec));
  }
  OnReceived(static_cast<std::size_t>(received), pickup_ns);
}

// `pickup_ns`: how long the data waited in the socket before this read (-1: not known).
void Connection::OnReceived(std::size_t received, std::int64_t pickup_ns) {
  in_used_ += received;
  const std::int64_t now = NowNs();
  ThreadLedger& ledger = worker_.ledger;
  std::size_t offset = 0, replies = 0;
  // Replies read together to requests sent together (a pipelined batch in closed loop) have the
  // same latencies: recorded as one run of equal values, which is the same histogram for less work.
  std::uint64_t run_latency = 0, run_uncorrected = 0, run_length = 0;
  const auto record_run = [&ledger, &run_latency, &run_uncorrected, &run_length] {
    ledger.RecordLatencies(run_latency, run_uncorrected, run_length);
  };
  const char* failure = nullptr;
  bool measured = false;  // a reply past the warm-up was read
  while (true) {
    std::size_t consumed = 0;
    bool is_error = false;
    long long array_length = -1;
    const ReplyStatus status = ParseReply(std::string_view(in_.data() + offset, in_used_ - offset),
                                          &consumed, &is_error, &array_length);
    if (status == ReplyStatus::kNeedMore) break;
    // Garbage, or a reply to nothing we sent: the stream cannot be trusted.
    if (status == ReplyStatus::kProtocolError) {
      failure = "not a RESP reply";
      break;
    }
    if (in_flight_.size() == 0) {
      failure = "a reply to no request";
      break;
    }
    offset += consumed;
    ++replies;
    const InFlight request = in_flight_.Pop();
    if (!worker_.ledger.Measured(request.intended_ns)) continue;
    // An MGET answered with an array of another length, or with no array, is not its answer:
    // counted as an error, as an error reply is.
    if (request.array_length != 0 && array_length != static_cast<long long>(request.array_length)) {
      is_error = true;
    }
    const auto latency = static_cast<std::uint64_t>(now - request.intended_ns);
    const auto uncorrected = static_cast<std::uint64_t>(now - request.sent_ns);
    if (latency != run_latency || uncorrected != run_uncorrected) {
      record_run();  // RecordCount ignores a run of none
      run_latency = latency;
      run_uncorrected = uncorrected;
      run_length = 0;
    }
    ++run_length;
    measured = true;
    worker_.ledger.CountReply(is_error, now);
  }
  record_run();
  // Once a read, like the wait it measures (replies read together waited together).
  if (pickup_ns >= 0 && measured)
    ledger.stats.reply_pickup.Record(static_cast<std::uint64_t>(pickup_ns));
  worker_.RepliesReceived(replies);
  if (failure != nullptr) {
    Fail(failure);
    return;
  }
  std::memmove(in_.data(), in_.data() + offset, in_used_ - offset);
  in_used_ -= offset;
  if (!ledger_.open_loop() && replies > 0) SendClosedLoop(replies, now);
  FinishIfIdle();
  if (!ledger_.done()) DoRead();
}

void Connection::FinishIfIdle() {
  if (!ledger_.Finish(in_flight_.size())) return;
  std::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  worker_.ConnectionDone();
}

void Connection::Fail(const std::string& why) {
  if (!ledger_.Lose(why)) return;
  worker_.RepliesReceived(in_flight_.size());  // never coming now
  worker_.ledger.stats.failed += in_flight_.DrainCountingFrom(worker_.ledger.warm_end_ns);
  FinishIfIdle();
}

}  // namespace switchyard::loadgen::resp
