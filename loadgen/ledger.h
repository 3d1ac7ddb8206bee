// The books both transports keep the same way, whatever goes on the wire. A thread's ledger knows
// when measuring begins (the end of the warm-up), when sending ends (--duration, Ctrl-C) and when
// the replies still owed are given up (--drain), and what the thread has measured so far. A
// connection's ledger knows what it may still send (its share of --requests, its schedule), which
// sends are due and how late each went out (the schedule lag, and the latency counted from the
// intended time: coordinated-omission correction, as wrk2 does), and when it is done or lost. A
// transport only writes the requests, reads the replies, and tells its ledgers so.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "loadgen/histogram.h"
#include "loadgen/load.h"
#include "loadgen/workload.h"

namespace switchyard::loadgen {

// Steady-clock nanoseconds, the unit of every schedule and latency, and back to a time point.
std::int64_t NowNs();
std::chrono::steady_clock::time_point ToTimePoint(std::int64_t ns);

// What the worker threads publish a few times a second, for the progress line and the
// Prometheus endpoint. Everything cumulative except `latency_interval`, which the reader takes.
struct LiveStats {
  std::mutex mutex;
  std::uint64_t ok = 0, errors = 0, failed = 0, sent = 0;
  Histogram latency_interval;  // corrected latencies since the last Take
  std::int64_t max_lag_interval_ns = 0;
  bool measuring = false;  // past the warm-up
};

// Everything one engine thread measures; merged exactly into the run's totals at the end.
struct ThreadStats {
  Histogram latency, uncorrected, schedule_lag;
  Histogram reply_pickup;  // open loop: how long replies waited in the socket for this thread
  std::uint64_t ok = 0, errors = 0, failed = 0, sent = 0;
  std::int64_t last_reply_ns = 0, last_send_ns = 0;
  // Published to LiveStats on each tick.
  Histogram latency_interval;
  std::uint64_t published_ok = 0, published_errors = 0, published_failed = 0, published_sent = 0;
  std::int64_t max_lag_interval_ns = 0;
  std::uint64_t connections_lost = 0;
  std::string first_loss;    // why the first lost connection was given up
  std::int64_t spin_ns = 0;  // time spent spinning to send on schedule (--spin)
  // Measured part: time the thread was runnable but waiting for a CPU (other work on its CPU).
  std::int64_t run_queue_wait_ns = 0;

  // Adds another thread's figures (not the live ones).
  void MergeTotals(const ThreadStats& other);
  // Hands what changed since the last call to the live figures (`measuring`: past the warm-up).
  void PublishTo(LiveStats& live, bool measuring);
};

// One engine thread's books: its window of the run and what it measured.
class ThreadLedger {
 public:
  ThreadLedger(const LoadConfig& config, LiveStats* live) : config(config), live_(live) {}

  // The thread's prologue: sets when measuring begins and sending ends for a run starting at
  // `start_ns`, asks for timers within 1 ns rather than Linux's default 50 us slack (a late timer
  // is schedule lag, charged to the latencies), and sleeps until the start.
  void Begin(std::int64_t start_ns);

  // A few times a second: honour Ctrl-C (sending ends now), give up on replies overdue once
  // sending has stopped (each connection's Abort), let every connection with nothing more to send
  // finish now rather than at its next intended time (after Ctrl-C that may lie far ahead), and
  // publish the live figures. `connections` hold pointers to the transport's connections.
  template <typename Connections>
  void Tick(std::int64_t now, Connections& connections) {
    if (DrainOver(now)) {
      for (auto& connection : connections) connection->Abort();
    }
    for (auto& connection : connections) connection->FinishIfNothingMore();
    Publish();
  }

  // Hands what changed to the live figures, if anyone reads them.
  void Publish();

  // Whether a request intended at `intended_ns` is counted (it falls after the warm-up).
  bool Measured(std::int64_t intended_ns) const { return intended_ns >= warm_end_ns; }
  // One reply, or a run of `count` replies with the same latencies: from the intended time
  // (corrected) and from the write (uncorrected).
  void RecordLatencies(std::uint64_t latency_ns, std::uint64_t uncorrected_ns, std::uint64_t count);
  // One measured reply at `now`: an answer, or an error (an error reply, or not the whole answer).
  void CountReply(bool error, std::int64_t now);

  void ConnectionDone() { ++done_connections_; }
  std::size_t done_connections() const { return done_connections_; }

  const LoadConfig& config;
  ThreadStats stats;
  std::int64_t warm_end_ns = 0;
  std::int64_t send_end_ns = 0;  // no request intended at or after this time is sent

 private:
  // Applies Ctrl-C; true once sending has stopped and --drain has passed since (a --requests run
  // without Ctrl-C waits for every reply).
  bool DrainOver(std::int64_t now);

  LiveStats* live_;
  std::size_t done_connections_ = 0;
};

// One connection's books: what it may still send and when, and whether it is done.
class ConnectionLedger {
 public:
  // `quota`: requests this connection may send in all (UINT64_MAX: no limit but the time).
  ConnectionLedger(ThreadLedger& thread, std::uint64_t quota) : thread_(thread), quota_(quota) {}

  // Open loop: the intended send times. Without one the connection runs closed loop.
  void SetSchedule(Schedule schedule) { schedule_.emplace(schedule); }
  bool open_loop() const { return schedule_.has_value(); }
  // Open loop: when the next request is due.
  std::int64_t NextDue() const { return schedule_->Peek(); }

  // Whether a request intended at `intended_ns` is still to be sent.
  bool Sending(std::int64_t intended_ns) const {
    return !done_ && quota_ > 0 && intended_ns < thread_.send_end_ns;
  }
  // Open loop: whether the next request of the schedule will be sent.
  bool WantsToSend() const { return schedule_ && Sending(schedule_->Peek()); }
  // Open loop: nothing more will be sent, though replies may still be owed.
  bool NothingMoreToSend() const { return !done_ && schedule_ && !Sending(schedule_->Peek()); }

  // Open loop: takes the next request due by `now`, if one is, and books it sent at `now`. A late
  // wake-up takes every request that fell due meanwhile, each keeping its own intended time, so
  // the lateness is charged to the latency rather than silently dropped; the lag is recorded.
  bool TakeDue(std::int64_t now, std::int64_t* intended_ns);
  // Closed loop: books a request written at `now` (due when written), if one is still to be sent.
  bool TakeNow(std::int64_t now);

  // Done once nothing is in flight and nothing more will be sent: true the one time it becomes
  // done (the transport then closes what it holds).
  bool Finish(std::size_t in_flight);
  // Books the connection lost for `why` (the first loss of the thread is reported) and sends
  // nothing more. False when it was already done or lost: the transport has nothing to undo.
  bool Lose(const std::string& why);

  bool done() const { return done_; }
  bool lost() const { return lost_; }

 private:
  ThreadLedger& thread_;
  std::uint64_t quota_;  // requests this connection may still send
  std::optional<Schedule> schedule_;
  bool lost_ = false;
  bool done_ = false;
};

}  // namespace switchyard::loadgen
