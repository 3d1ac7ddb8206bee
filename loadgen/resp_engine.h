// The RESP transport's two parts, shared by its two files: the connection, which writes requests
// and matches the replies (resp_connection.cc), and the thread that drives its connections: one
// event loop, open-loop waking and spinning, the tick (resp_transport.cc). Private to them.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "loadgen/ledger.h"
#include "loadgen/spin_window.h"
#include "loadgen/workload.h"

namespace switchyard::loadgen::resp {

using asio::ip::tcp;

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
  void SetSchedule(Schedule schedule) { ledger_.SetSchedule(schedule); }
  void Start();
  // Busy-poll mode: sends what is due by `now` (the worker checks instead of arming a timer).
  void PollSchedule(std::int64_t now) {
    if (ledger_.done() || !ledger_.open_loop()) return;
    if (!ledger_.WantsToSend()) {
      FinishIfIdle();
    } else if (ledger_.NextDue() <= now) {
      SendDue();
    }
  }
  // Open loop: sends what is due if the next request is due by `now`, and asks the worker to
  // wake it for the next one. True when the connection no longer needs watching (it sent, or it
  // is done).
  bool SendIfDue(std::int64_t now) {
    if (ledger_.done()) return true;
    if (ledger_.NextDue() > now) return false;
    SendDue();
    WaitForNextSend();
    return true;
  }
  // Open loop after Ctrl-C or the end of sending: finish once the replies owed are in.
  void FinishIfNothingMore() {
    if (ledger_.NothingMoreToSend()) FinishIfIdle();
  }
  // Stops at once: requests still owed a reply count as failed.
  void Abort() { Fail("replies still owed after --drain"); }

 private:
  void SendDue();  // open loop: everything the schedule says is due by now
  void SendClosedLoop(std::size_t count, std::int64_t now);
  void Flush();
  void DoWrite();
  void DoRead();
  void ReadStamped();
  void OnReceived(std::size_t received, std::int64_t pickup_ns);
  void WaitForNextSend();
  void FinishIfIdle();
  // Gives the connection up: what it still owes counts as failed, and `why` is reported.
  void Fail(const std::string& why);

  Worker& worker_;
  ConnectionLedger ledger_;
  tcp::socket socket_;
  Random random_;
  std::string out_, writing_;
  bool write_in_progress_ = false;
  std::vector<char> in_;
  std::size_t in_used_ = 0;
  // Open loop: replies are read with the kernel's receive time (SO_TIMESTAMPNS), which gives how
  // long each read's reply waited for this thread: the load generator's own share of a latency.
  bool stamped_reads_ = false;
  InFlightQueue in_flight_;
};

class Worker {
 public:
  Worker(const LoadConfig& config, const Workload& workload, LiveStats* live)
      : io(1),
        ledger(config, live),
        workload(workload),
        spin(config.rate > 0 && !config.busy_poll ? SpinWindowNs(config.spin_seconds) : 0),
        tick_(io),
        wake_timer_(io) {}

  // Runs this thread's connections from `start_ns` until every one is done.
  void Run(std::int64_t start_ns);

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

  // A connection is done (its ledger has counted it): once all are, nothing is left to wake for,
  // and the loop runs out of work and ends.
  void ConnectionDone() {
    if (!AllDone()) return;
    tick_.cancel();
    waiting_ = {};
    armed_wake_ns_ = INT64_MAX;
    wake_timer_.cancel();
  }

  asio::io_context io;
  ThreadLedger ledger;
  const Workload& workload;
  SpinWindow spin;  // disabled: connections' timers fire when a request is due
  std::vector<std::unique_ptr<Connection>> connections;

 private:
  bool AllDone() const { return ledger.done_connections() == connections.size(); }
  void RunOpenLoop();
  bool ReplyDueSoon() const;
  void ArmWakeTimer();
  void Tick();

  static constexpr std::int64_t kReplySpinNs = 1'000'000;
  static constexpr std::int64_t kTickSpinBudgetNs = 25'000'000;  // of each 100 ms tick

  asio::steady_timer tick_;
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

}  // namespace switchyard::loadgen::resp
