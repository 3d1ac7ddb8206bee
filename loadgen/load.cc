#include "loadgen/load.h"

#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <queue>
#include <stdexcept>
#include <thread>
#include <vector>

#include "loadgen/resp_reply.h"
#include "loadgen/spin_window.h"
#include "loadgen/stall_signature.h"

namespace switchyard::loadgen {

std::atomic<bool> g_stop_requested{false};

std::int64_t SpinWindowNs(double spin_seconds) {
  return spin_seconds < 0 ? SpinWindow::kLearn : std::llround(spin_seconds * 1e9);
}

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point ToTimePoint(std::int64_t ns) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

namespace {

using asio::ip::tcp;

// How long the calling thread has waited, runnable, for a CPU (the kernel's schedstat run_delay);
// -1 where the kernel does not say.
std::int64_t ThreadRunQueueWaitNs() {
  std::ifstream file("/proc/thread-self/schedstat");
  std::int64_t running = 0, waiting = -1;
  file >> running >> waiting;
  return file ? waiting : -1;
}

// CPUs this process may run on (taskset limits it): the ceiling of its own CPU use.
unsigned UsableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::thread::hardware_concurrency();
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// Connects to the first endpoint that answers within `timeout_seconds` each. A blocking connect
// would wait for the kernel's SYN retries, two minutes, when a server's listen backlog is full.
void ConnectWithin(tcp::socket& socket, const tcp::resolver::results_type& endpoints,
                   double timeout_seconds, std::error_code* error) {
  *error = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    std::error_code ignored;
    socket.close(ignored);
    socket.open(entry.endpoint().protocol(), *error);
    if (*error) continue;
    socket.non_blocking(true, *error);
    if (*error) continue;
    const tcp::endpoint endpoint = entry.endpoint();
    if (::connect(socket.native_handle(), endpoint.data(), endpoint.size()) == 0) return;
    if (errno != EINPROGRESS) {
      *error = std::error_code(errno, asio::error::get_system_category());
      continue;
    }
    pollfd writable{socket.native_handle(), POLLOUT, 0};
    const int ready = poll(&writable, 1, static_cast<int>(timeout_seconds * 1000));
    if (ready == 0) {
      *error = asio::error::timed_out;
      continue;
    }
    int result = 0;
    socklen_t length = sizeof result;
    getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &result, &length);
    if (ready > 0 && result == 0) {
      *error = {};
      return;
    }
    *error = std::error_code(ready < 0 ? errno : result, asio::error::get_system_category());
  }
}

// A request on the wire: when it was due (the schedule's time; the write time in closed loop),
// when it was written, and how many elements its reply must be an array of (0: any reply).
struct InFlight {
  std::int64_t intended_ns;
  std::int64_t sent_ns;
  std::size_t array_length = 0;
};

// FIFO of requests awaiting their replies, which come back in order. A power-of-two ring that
// grows, so the steady state allocates nothing.
class InFlightQueue {
 public:
  InFlightQueue() : slots_(64) {}
  void Push(InFlight item) {
    if (size_ == slots_.size()) Grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = item;
    ++size_;
  }
  InFlight Pop() {
    const InFlight item = slots_[head_];
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return item;
  }
  std::size_t size() const { return size_; }
  // Counts entries due at or after `from_ns` and empties the queue.
  std::uint64_t DrainCountingFrom(std::int64_t from_ns) {
    std::uint64_t count = 0;
    while (size_ > 0) count += Pop().intended_ns >= from_ns ? 1 : 0;
    return count;
  }

 private:
  void Grow() {
    std::vector<InFlight> bigger(slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = slots_[(head_ + i) & (slots_.size() - 1)];
    slots_.swap(bigger);
    head_ = 0;
  }
  std::vector<InFlight> slots_;
  std::size_t head_ = 0, size_ = 0;
};

class Worker;

// One connection: requests go out from `out_`, replies are matched in order against `in_flight_`.
class Connection {
 public:
  Connection(Worker& worker, tcp::socket socket, std::uint64_t quota, std::uint64_t seed);
  void SetSchedule(Schedule schedule) { schedule_.emplace(schedule); }
  void Start();
  // Busy-poll mode: sends what is due by `now` (the worker checks instead of arming a timer).
  void PollSchedule(std::int64_t now) {
    if (done_ || !schedule_) return;
    if (!Sending(schedule_->Peek())) {
      FinishIfIdle();
    } else if (schedule_->Peek() <= now) {
      SendDue();
    }
  }
  // Open loop: sends what is due if the next request is due by `now`, and asks the worker to
  // wake it for the next one. True when the connection no longer needs watching (it sent, or it
  // is done).
  bool SendIfDue(std::int64_t now) {
    if (done_) return true;
    if (schedule_->Peek() > now) return false;
    SendDue();
    WaitForNextSend();
    return true;
  }
  // Stops at once: requests still owed a reply count as failed.
  void Abort();
  bool done() const { return done_; }

 private:
  void SendDue();  // open loop: everything the schedule says is due by now
  void SendClosedLoop(std::size_t count, std::int64_t now);
  void Flush();
  void DoWrite();
  void DoRead();
  void ReadStamped();
  void OnReceived(std::size_t received, std::int64_t pickup_ns);
  void WaitForNextSend();
  bool Sending(std::int64_t intended_ns) const;
  void FinishIfIdle();
  // Gives the connection up: what it still owes counts as failed, and `why` is reported.
  void Fail(const std::string& why);

  Worker& worker_;
  tcp::socket socket_;
  std::uint64_t quota_;  // requests this connection may still send
  Random random_;
  std::optional<Schedule> schedule_;
  std::string out_, writing_;
  bool write_in_progress_ = false;
  std::vector<char> in_;
  std::size_t in_used_ = 0;
  // Open loop: replies are read with the kernel's receive time (SO_TIMESTAMPNS), which gives how
  // long each read's reply waited for this thread: the load generator's own share of a latency.
  bool stamped_reads_ = false;
  InFlightQueue in_flight_;
  bool done_ = false;
};

class Worker {
 public:
  Worker(const LoadConfig& config, const Workload& workload, LiveStats* live)
      : io(1),
        config(config),
        workload(workload),
        spin(config.rate > 0 && !config.busy_poll ? SpinWindowNs(config.spin_seconds) : 0),
        live_(live),
        tick_(io),
        wake_timer_(io) {}

  void Run(std::int64_t start_ns) {
    warm_end_ns = start_ns + static_cast<std::int64_t>(config.warmup_seconds * 1e9);
    send_end_ns = config.requests != 0
                      ? INT64_MAX
                      : warm_end_ns + static_cast<std::int64_t>(config.duration_seconds * 1e9);
    // Timers fire within 1 ns of when asked rather than Linux's default 50 µs slack: a late
    // timer is schedule lag, charged to the latencies.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    std::this_thread::sleep_until(ToTimePoint(start_ns));
    for (auto& connection : connections) connection->Start();
    Tick();
    if (config.busy_poll) {
      // Timers are checked here rather than through the kernel's timer: spinning only pays off
      // if nothing waits for an interrupt.
      while (!io.stopped()) {
        io.poll();
        if (config.rate > 0) {
          const std::int64_t now = NowNs();
          for (auto& connection : connections) connection->PollSchedule(now);
        }
      }
    } else if (config.rate > 0) {
      RunOpenLoop();
    } else {
      io.run();
    }
    const std::int64_t waited = ThreadRunQueueWaitNs();
    if (run_queue_wait_start_ns_ >= 0 && waited >= run_queue_wait_start_ns_)
      stats.run_queue_wait_ns = waited - run_queue_wait_start_ns_;
    Publish();
  }

  // Open loop: `connection` is to be watched from `wake_ns` (its next send time less the spin
  // window) until that send is due.
  void WakeAt(std::int64_t wake_ns, Connection* connection) {
    waiting_.push({wake_ns, connection});
  }

  // Requests sent and not yet answered, on every connection of this thread.
  void RequestSent(std::int64_t now) {
    ++awaiting_replies_;
    last_send_ns_ = now;
  }
  void RepliesReceived(std::size_t count) { awaiting_replies_ -= count; }

  void ConnectionDone() {
    if (++done_connections_ < connections.size()) return;
    tick_.cancel();
    // Nothing left to wake for: the loop runs out of work and ends.
    waiting_ = {};
    armed_wake_ns_ = INT64_MAX;
    wake_timer_.cancel();
  }

  asio::io_context io;
  const LoadConfig& config;
  const Workload& workload;
  SpinWindow spin;  // disabled: connections' timers fire when a request is due
  std::vector<std::unique_ptr<Connection>> connections;
  ThreadStats stats;
  std::int64_t warm_end_ns = 0;
  std::int64_t send_end_ns = 0;  // no request intended at or after this time is sent

 private:
  // Open loop (not --busy-poll). Sleeps in epoll while no request is due within the spin window;
  // once one is, polls the loop without sleeping, so replies are still read, and sends each
  // request at its exact time (with --spin 0 the window is empty: it sleeps to each send).
  //
  // The connections waiting for their next send are a heap, and one timer wakes the thread for
  // the earliest, armed only when the thread is about to sleep. A timer a connection, re-armed
  // after every send, cost a timerfd_settime a send even while the thread was spinning, and on
  // a VM that reprogramming of the CPU's timer is an exit to the host: at 24,000/s on one
  // thread here, 43% of the load generator's CPU, enough to make it the limit.
  //
  // It also polls while a reply is owed for a request sent less than kReplySpinNs ago: a reply
  // that finds this thread asleep is read only once the thread has been woken, 50-100 µs later on
  // a virtual machine, and that delay would be charged to the server as latency (at 1,500/s
  // against redis-server here it added about 40 µs to the p50). Bounded: at most a quarter of
  // each 100 ms tick is spent so, so a rate that always owes replies does not cost a whole CPU;
  // past that the thread sleeps until the next tick. Counted as spin, like the send-side wait.
  void RunOpenLoop() {
    while (!io.stopped()) {
      for (const std::int64_t now = NowNs(); !waiting_.empty() && waiting_.top().first <= now;) {
        imminent_.push_back(waiting_.top().second);
        waiting_.pop();
      }
      if (imminent_.empty() && !ReplyDueSoon()) {
        ArmWakeTimer();
        if (io.run_one() == 0) break;
        continue;
      }
      const std::int64_t before = NowNs();
      const std::size_t handled = io.poll();
      const std::int64_t now = NowNs();
      bool sent = false;
      for (std::size_t i = 0; i < imminent_.size();) {
        if (imminent_[i]->SendIfDue(now)) {
          imminent_[i] = imminent_.back();
          imminent_.pop_back();
          sent = true;
        } else {
          ++i;
        }
      }
      if (handled == 0 && !sent) {
        const std::int64_t spun = NowNs() - before;
        tick_spin_ns_ += spun;
        if (before >= warm_end_ns) stats.spin_ns += spun;
      }
    }
  }

  static constexpr std::int64_t kReplySpinNs = 1'000'000;
  static constexpr std::int64_t kTickSpinBudgetNs = 25'000'000;  // of each 100 ms tick

  bool ReplyDueSoon() const {
    return spin.enabled() && awaiting_replies_ > 0 && NowNs() - last_send_ns_ < kReplySpinNs &&
           tick_spin_ns_ < kTickSpinBudgetNs;
  }

  // Before sleeping: the timer set for the earliest waiting connection, unless it already is.
  // Its wake-ups teach the spin window how late this thread's sleeps end.
  void ArmWakeTimer() {
    const std::int64_t wake_ns = waiting_.empty() ? INT64_MAX : waiting_.top().first;
    if (wake_ns == armed_wake_ns_) return;
    armed_wake_ns_ = wake_ns;
    if (wake_ns == INT64_MAX) {
      wake_timer_.cancel();
      return;
    }
    wake_timer_.expires_at(ToTimePoint(wake_ns));
    wake_timer_.async_wait([this, wake_ns](std::error_code error) {
      if (error) return;  // re-armed for an earlier connection, or cancelled
      armed_wake_ns_ = INT64_MAX;
      spin.Woke(wake_ns, NowNs());
    });
  }

  // A few times a second: publish live figures, honour Ctrl-C, and give up on replies that are
  // overdue once sending has stopped.
  void Tick() {
    if (done_connections_ == connections.size()) return;
    const std::int64_t now = NowNs();
    if (g_stop_requested.load(std::memory_order_relaxed) && send_end_ns > now) send_end_ns = now;
    // Only once sending has stopped (a --requests run without Ctrl-C waits for every reply).
    if (send_end_ns != INT64_MAX &&
        now > send_end_ns + static_cast<std::int64_t>(config.drain_seconds * 1e9)) {
      for (auto& connection : connections) connection->Abort();
    }
    Publish();
    if (done_connections_ == connections.size()) return;
    tick_spin_ns_ = 0;
    if (run_queue_wait_start_ns_ < 0 && now >= warm_end_ns)
      run_queue_wait_start_ns_ = ThreadRunQueueWaitNs();
    tick_.expires_after(std::chrono::milliseconds(100));
    tick_.async_wait([this](std::error_code error) {
      if (!error) Tick();
    });
  }

  void Publish() {
    if (live_ != nullptr) stats.PublishTo(*live_, NowNs() >= warm_end_ns);
  }

  LiveStats* live_;
  asio::steady_timer tick_;
  std::size_t done_connections_ = 0;
  // Open loop: connections by the time to start watching them (earliest first), and those
  // being watched until their send is due.
  using Wake = std::pair<std::int64_t, Connection*>;
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> waiting_;
  std::vector<Connection*> imminent_;
  asio::steady_timer wake_timer_;
  std::int64_t armed_wake_ns_ = INT64_MAX;  // what wake_timer_ is set for; INT64_MAX: not set
  std::size_t awaiting_replies_ = 0;
  std::int64_t last_send_ns_ = 0;
  std::int64_t tick_spin_ns_ = 0;              // polled without work since the last tick
  std::int64_t run_queue_wait_start_ns_ = -1;  // at the first tick past the warm-up
};

Connection::Connection(Worker& worker, tcp::socket socket, std::uint64_t quota, std::uint64_t seed)
    : worker_(worker), socket_(std::move(socket)), quota_(quota), random_(seed), in_(64 * 1024) {}

void Connection::Start() {
  if (quota_ == 0) {
    FinishIfIdle();
    return;
  }
  if (schedule_) {
    const int on = 1;
    stamped_reads_ =
        setsockopt(socket_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  }
  DoRead();
  if (schedule_) {
    WaitForNextSend();
  } else {
    SendClosedLoop(worker_.config.pipeline, NowNs());
  }
}

bool Connection::Sending(std::int64_t intended_ns) const {
  return !done_ && quota_ > 0 && intended_ns < worker_.send_end_ns;
}

void Connection::WaitForNextSend() {
  if (!Sending(schedule_->Peek())) {
    FinishIfIdle();
    return;
  }
  if (worker_.config.busy_poll) return;  // the worker's loop polls the schedule
  worker_.WakeAt(schedule_->Peek() - worker_.spin.ns(), this);
}

void Connection::SendDue() {
  const std::int64_t now = NowNs();
  ThreadStats& stats = worker_.stats;
  // A late timer sends everything that fell due meanwhile, each stamped with its own intended
  // time, so the lateness is charged to the latency rather than silently dropped.
  while (schedule_->Peek() <= now && Sending(schedule_->Peek())) {
    const std::int64_t intended = schedule_->Next();
    in_flight_.Push({intended, now, worker_.workload.AppendRequest(out_, random_)});
    worker_.RequestSent(now);
    --quota_;
    if (intended >= worker_.warm_end_ns) {
      const std::int64_t lag = now - intended;
      stats.schedule_lag.Record(static_cast<std::uint64_t>(lag));
      stats.max_lag_interval_ns = std::max(stats.max_lag_interval_ns, lag);
      ++stats.sent;
      stats.last_send_ns = now;
    }
  }
  Flush();
  FinishIfIdle();
}

void Connection::SendClosedLoop(std::size_t count, std::int64_t now) {
  ThreadStats& stats = worker_.stats;
  for (std::size_t i = 0; i < count && Sending(now); ++i) {
    in_flight_.Push({now, now, worker_.workload.AppendRequest(out_, random_)});
    worker_.RequestSent(now);
    --quota_;
    if (now >= worker_.warm_end_ns) {
      ++stats.sent;
      stats.last_send_ns = now;
    }
  }
  Flush();
}

// Writes at once when the socket takes it (the common case: one system call, no handler), and
// falls back to an asynchronous write for what the kernel could not take.
void Connection::Flush() {
  if (write_in_progress_ || out_.empty() || done_) return;
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
    if (done_) return;
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
      if (done_) return;
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
        if (done_) return;
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
  ThreadStats& stats = worker_.stats;
  std::size_t offset = 0, replies = 0;
  // Replies read together to requests sent together (a pipelined batch in closed loop) have the
  // same latencies: recorded as one run of equal values, which is the same histogram for less work.
  std::uint64_t run_latency = 0, run_uncorrected = 0, run_length = 0;
  const auto record_run = [&stats, &run_latency, &run_uncorrected, &run_length] {
    stats.latency.RecordCount(run_latency, run_length);
    stats.latency_interval.RecordCount(run_latency, run_length);
    stats.uncorrected.RecordCount(run_uncorrected, run_length);
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
    if (request.intended_ns < worker_.warm_end_ns) continue;
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
    ++(is_error ? stats.errors : stats.ok);
    stats.last_reply_ns = now;
  }
  record_run();
  // Once a read, like the wait it measures (replies read together waited together).
  if (pickup_ns >= 0 && measured) stats.reply_pickup.Record(static_cast<std::uint64_t>(pickup_ns));
  worker_.RepliesReceived(replies);
  if (failure != nullptr) {
    Fail(failure);
    return;
  }
  std::memmove(in_.data(), in_.data() + offset, in_used_ - offset);
  in_used_ -= offset;
  if (!schedule_ && replies > 0) SendClosedLoop(replies, now);
  FinishIfIdle();
  if (!done_) DoRead();
}

void Connection::FinishIfIdle() {
  if (done_ || in_flight_.size() > 0) return;
  const std::int64_t next = schedule_ ? schedule_->Peek() : NowNs();
  if (Sending(next)) return;
  done_ = true;
  std::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  worker_.ConnectionDone();
}

void Connection::Fail(const std::string& why) {
  if (done_) return;
  if (worker_.stats.connections_lost++ == 0) worker_.stats.first_loss = why;
  worker_.RepliesReceived(in_flight_.size());  // never coming now
  worker_.stats.failed += in_flight_.DrainCountingFrom(worker_.warm_end_ns);
  quota_ = 0;
  FinishIfIdle();
}

void Connection::Abort() { Fail("replies still owed after --drain"); }

}  // namespace

void FillLatency(const Histogram& histogram, pb::Latency* latency) {
  const auto seconds = [&](double percentile) {
    return static_cast<double>(histogram.ValueAtPercentile(percentile)) / 1e9;
  };
  latency->set_p50(seconds(50));
  latency->set_p90(seconds(90));
  latency->set_p99(seconds(99));
  latency->set_p999(seconds(99.9));
  latency->set_p9999(seconds(99.99));
  latency->set_max(static_cast<double>(histogram.max()) / 1e9);
  latency->set_mean(histogram.mean() / 1e9);
}

void SetHistograms(const Histogram& latency, const Histogram& uncorrected,
                   const Histogram& schedule_lag, const Histogram& reply_pickup,
                   pb::LoadResult* result) {
  FillLatency(latency, result->mutable_latency());
  FillLatency(uncorrected, result->mutable_latency_uncorrected());
  FillLatency(schedule_lag, result->mutable_schedule_lag());
  FillLatency(reply_pickup, result->mutable_reply_pickup());
  ToProto(latency, result->mutable_histogram());
  ToProto(uncorrected, result->mutable_histogram_uncorrected());
  ToProto(schedule_lag, result->mutable_histogram_schedule_lag());
  ToProto(reply_pickup, result->mutable_histogram_reply_pickup());
}

void SetDelayedAckStall(const Histogram& latency, pb::LoadResult* result) {
  const StallSignature stall = DelayedAckStall(latency);
  result->set_delayed_ack_stall(stall.fired);
  result->set_delayed_ack_stall_fraction(stall.fraction);
  result->set_delayed_ack_stall_message(stall.message);
}

void ToProto(const Histogram& histogram, pb::Histogram* message) {
  message->set_total(histogram.total());
  message->set_min_ns(histogram.min());
  message->set_max_ns(histogram.max());
  message->set_sum_ns(histogram.sum());
  for (const auto& [value, count] : histogram.Buckets()) {
    auto* bucket = message->add_buckets();
    bucket->set_value_ns(value);
    bucket->set_count(count);
  }
}

Histogram FromProto(const pb::Histogram& message) {
  Histogram histogram;
  for (const auto& bucket : message.buckets())
    histogram.RecordCount(bucket.value_ns(), bucket.count());
  if (histogram.total() != message.total()) {
    throw std::runtime_error("histogram buckets add up to " + std::to_string(histogram.total()) +
                             " samples, not the " + std::to_string(message.total()) + " declared");
  }
  histogram.SetExtremes(message.min_ns(), message.max_ns(), message.sum_ns());
  return histogram;
}

unsigned PrepareRun(const LoadConfig& config) {
  if (config.connections == 0 || config.threads == 0 || config.pipeline == 0) {
    throw std::invalid_argument("--connections, --threads and --pipeline must be at least 1");
  }
  if (config.rate < 0) throw std::invalid_argument("--rate must not be negative");
  // Thousands of connections need thousands of descriptors: raise the soft limit to the hard one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return std::min(config.threads, config.connections);
}

pb::LoadResult RunLoad(const LoadConfig& config, LiveStats* live) {
  const unsigned threads = PrepareRun(config);
  const Workload workload(ParseMix(config.mix), config.keys, config.key_dist,
                          ParseSizeRange(config.value_size));

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(config, workload, live));
  }

  // Connect everything before the clock starts, so connection setup is never measured.
  asio::io_context resolver_io;
  tcp::resolver resolver(resolver_io);
  std::error_code error;
  const auto endpoints = resolver.resolve(config.host, std::to_string(config.port), error);
  const std::string target = config.host + ":" + std::to_string(config.port);
  if (error) throw std::runtime_error("cannot resolve " + target + ": " + error.message());
  for (unsigned c = 0; c < config.connections; ++c) {
    Worker& worker = *workers[c % threads];
    tcp::socket socket(worker.io);
    ConnectWithin(socket, endpoints, config.connect_timeout_seconds, &error);
    if (error == asio::error::timed_out) {
      char why[160];
      std::snprintf(why, sizeof why,
                    "no answer within %gs (after %u connections: the server is not accepting, "
                    "or its listen backlog is full)",
                    config.connect_timeout_seconds, c);
      throw std::runtime_error("cannot connect to " + target + ": " + why);
    }
    if (error) {
      throw std::runtime_error("cannot connect to " + target + ": " + error.message() + " (after " +
                               std::to_string(c) + " connections)");
    }
    socket.set_option(tcp::no_delay(true));
    socket.non_blocking(true);
    const std::uint64_t quota = config.requests == 0
                                    ? UINT64_MAX
                                    : config.requests / config.connections +
                                          (c < config.requests % config.connections ? 1 : 0);
    worker.connections.push_back(
        std::make_unique<Connection>(worker, std::move(socket), quota, 0xc0ffee00 + c));
  }
  RunTotals run = RunWorkers(config, workers);
  return MakeResult(config, run);
}

void ThreadStats::MergeTotals(const ThreadStats& other) {
  latency.Merge(other.latency);
  uncorrected.Merge(other.uncorrected);
  schedule_lag.Merge(other.schedule_lag);
  reply_pickup.Merge(other.reply_pickup);
  ok += other.ok;
  errors += other.errors;
  failed += other.failed;
  sent += other.sent;
  last_reply_ns = std::max(last_reply_ns, other.last_reply_ns);
  last_send_ns = std::max(last_send_ns, other.last_send_ns);
  if (connections_lost == 0) first_loss = other.first_loss;
  connections_lost += other.connections_lost;
  spin_ns += other.spin_ns;
  run_queue_wait_ns += other.run_queue_wait_ns;
}

void ThreadStats::PublishTo(LiveStats& live, bool measuring) {
  std::lock_guard lock(live.mutex);
  live.ok += ok - published_ok;
  live.errors += errors - published_errors;
  live.failed += failed - published_failed;
  live.sent += sent - published_sent;
  published_ok = ok;
  published_errors = errors;
  published_failed = failed;
  published_sent = sent;
  live.latency_interval.Merge(latency_interval);
  latency_interval.Reset();
  live.max_lag_interval_ns = std::max(live.max_lag_interval_ns, max_lag_interval_ns);
  max_lag_interval_ns = 0;
  live.measuring = measuring;
}

pb::LoadResult MakeResult(const LoadConfig& config, const RunTotals& run) {
  const ThreadStats& total = run.merged;
  const std::int64_t warm_end_ns = run.warm_end_ns;
  pb::LoadResult result;
  pb::LoadSpec* spec = result.mutable_spec();
  spec->set_protocol(config.protocol);
  spec->set_host(config.host);
  spec->set_port(config.port);
  spec->set_connections(config.connections);
  spec->set_threads(run.threads);
  spec->set_pipeline(config.rate > 0 ? 0 : config.pipeline);
  spec->set_rate(config.rate);
  spec->set_arrival(config.arrival == Schedule::Arrival::kUniform ? "uniform" : "poisson");
  spec->set_duration_seconds(config.requests != 0 ? 0 : config.duration_seconds);
  spec->set_warmup_seconds(config.warmup_seconds);
  spec->set_requests(config.requests);
  spec->set_mix(config.mix);
  spec->set_keys(config.keys);
  spec->set_key_dist(config.key_dist);
  spec->set_value_size(config.value_size);
  spec->set_busy_poll(config.busy_poll);
  spec->set_spin_seconds(static_cast<double>(run.spin_window_ns) / 1e9);

  const std::uint64_t answered = total.ok + total.errors;
  // The measured span: from the end of the warm-up to the last reply counted.
  const double measured_seconds =
      static_cast<double>(std::max(total.last_reply_ns, warm_end_ns + 1) - warm_end_ns) / 1e9;
  // Stopped early by Ctrl-C, or run by count: the span actually sent over.
  const double sending_seconds =
      config.requests == 0 && !g_stop_requested
          ? config.duration_seconds
          : static_cast<double>(std::max(total.last_send_ns, warm_end_ns + 1) - warm_end_ns) / 1e9;
  result.set_target_rate(config.rate);
  result.set_requests(answered);
  result.set_errors(total.errors);
  result.set_failed(total.failed);
  result.set_duration_seconds(measured_seconds);
  result.set_throughput(answered / measured_seconds);
  result.set_sent_rate(sending_seconds > 0 ? total.sent / sending_seconds : 0);
  result.set_client_cpu_seconds(run.cpu_seconds);
  // Spinning is wall time on a CPU; a preempted spinner can count more than the CPU it got.
  const double spin_seconds = std::min(run.cpu_seconds, static_cast<double>(total.spin_ns) / 1e9);
  result.set_client_spin_seconds(spin_seconds);
  result.set_processes(1);
  result.set_connections_lost(total.connections_lost);
  result.set_first_loss(total.first_loss);
  SetHistograms(total.latency, total.uncorrected, total.schedule_lag, total.reply_pickup, &result);
  SetDelayedAckStall(total.latency, &result);

  // Was the load generator the limit? Its CPU near the ceiling it may use, or (open loop) sending
  // late against its own schedule or short of the rate asked for. gRPC runs I/O on threads of its
  // own besides ours; the process's CPU counts them, and the ceiling stays what our threads may
  // use, so a busy gRPC client is flagged rather than excused.
  const double wall_seconds = static_cast<double>(run.end_ns - warm_end_ns) / 1e9;
  result.set_machine_steal_fraction(StealFraction(run.steal_start, run.steal_end, wall_seconds));
  const double run_queue_wait = static_cast<double>(total.run_queue_wait_ns) / 1e9;
  result.set_client_run_queue_wait_seconds(run_queue_wait);
  const double cpu_ceiling = std::min<double>(run.threads, UsableCpus());
  const double busy = (run.cpu_seconds - spin_seconds) / (wall_seconds * cpu_ceiling);
  result.set_client_busy_fraction(busy);
  std::string reason;
  char text[160];
  // A busy-polling client uses all its CPU by design; only its lag can tell.
  if (busy > kClientBusyLimit && !config.busy_poll) {
    std::snprintf(text, sizeof text, "client CPU at %.0f%% of the %.0f CPU(s) it may use",
                  busy * 100, cpu_ceiling);
    reason = text;
  }
  if (config.rate > 0 && total.schedule_lag.total() > 0) {
    const double lag_p99 = static_cast<double>(total.schedule_lag.ValueAtPercentile(99)) / 1e9;
    if (lag_p99 > 0.001) {
      std::snprintf(text, sizeof text, "%sp99 schedule lag %.2f ms", reason.empty() ? "" : "; ",
                    lag_p99 * 1e3);
      reason += text;
    }
    if (!g_stop_requested && result.sent_rate() < 0.99 * config.rate) {
      std::snprintf(text, sizeof text, "%ssent %.0f/s of the %.0f/s asked",
                    reason.empty() ? "" : "; ", result.sent_rate(), config.rate);
      reason += text;
    }
  }
  // Say so when the client lagged because other work held its CPU: the machine, not the code.
  if (!reason.empty() && run_queue_wait >= 0.001) {
    std::snprintf(text, sizeof text,
                  "; its threads waited %.0f ms in all for a CPU held by other work (run queue)",
                  run_queue_wait * 1e3);
    reason += text;
  }
  result.set_client_limited(!reason.empty());
  result.set_client_limited_reason(reason);
  return result;
}

}  // namespace switchyard::loadgen
