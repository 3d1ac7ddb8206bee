// The shared books (ledger.h): the thread's window of the run and the connection's sends.
#include "loadgen/ledger.h"

#include <sys/prctl.h>

#include <algorithm>
#include <thread>

namespace switchyard::loadgen {

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

void ThreadLedger::Begin(std::int64_t start_ns) {
  warm_end_ns = start_ns + static_cast<std::int64_t>(config.warmup_seconds * 1e9);
  send_end_ns = config.requests != 0
                    ? INT64_MAX
                    : warm_end_ns + static_cast<std::int64_t>(config.duration_seconds * 1e9);
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  std::this_thread::sleep_until(ToTimePoint(start_ns));
}

bool ThreadLedger::DrainOver(std::int64_t now) {
  if (g_stop_requested.load(std::memory_order_relaxed) && send_end_ns > now) send_end_ns = now;
  return send_end_ns != INT64_MAX &&
         now > send_end_ns + static_cast<std::int64_t>(config.drain_seconds * 1e9);
}

void ThreadLedger::Publish() {
  if (live_ != nullptr) stats.PublishTo(*live_, NowNs() >= warm_end_ns);
}

void ThreadLedger::RecordLatencies(std::uint64_t latency_ns, std::uint64_t uncorrected_ns,
                                   std::uint64_t count) {
  stats.latency.RecordCount(latency_ns, count);
  stats.latency_interval.RecordCount(latency_ns, count);
  stats.uncorrected.RecordCount(uncorrected_ns, count);
}

void ThreadLedger::CountReply(bool error, std::int64_t now) {
  ++(error ? stats.errors : stats.ok);
  stats.last_reply_ns = now;
}

bool ConnectionLedger::TakeDue(std::int64_t now, std::int64_t* intended_ns) {
  if (!schedule_ || schedule_->Peek() > now || !Sending(schedule_->Peek())) return false;
  const std::int64_t intended = schedule_->Next();
  --quota_;
  if (thread_.Measured(intended)) {
    ThreadStats& stats = thread_.stats;
    const std::int64_t lag = now - intended;
    stats.schedule_lag.Record(static_cast<std::uint64_t>(lag));
    stats.max_lag_interval_ns = std::max(stats.max_lag_interval_ns, lag);
    ++stats.sent;
    stats.last_send_ns = now;
  }
  *intended_ns = intended;
  return true;
}

bool ConnectionLedger::TakeNow(std::int64_t now) {
  if (!Sending(now)) return false;
  --quota_;
  if (thread_.Measured(now)) {
    ++thread_.stats.sent;
    thread_.stats.last_send_ns = now;
  }
  return true;
}

bool ConnectionLedger::Finish(std::size_t in_flight) {
  if (done_ || in_flight > 0) return false;
  const std::int64_t next = schedule_ ? schedule_->Peek() : NowNs();
  if (Sending(next)) return false;
  done_ = true;
  thread_.ConnectionDone();
  return true;
}

bool ConnectionLedger::Lose(const std::string& why) {
  if (done_ || lost_) return false;
  if (thread_.stats.connections_lost++ == 0) thread_.stats.first_loss = why;
  lost_ = true;
  quota_ = 0;
  return true;
}

}  // namespace switchyard::loadgen
