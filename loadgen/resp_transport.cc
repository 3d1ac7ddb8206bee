// The RESP transport (resp_transport.h): the thread's side (resp_engine.h). One event loop a
// thread; it sleeps in epoll until a request is due or a reply arrives. Open loop, it wakes a
// little early and spins to each send time (spin_window.h), and polls a short while after a send
// so that a reply is read as it comes. Also: connecting every socket before the clock starts.
// What is due, what is owed and what it measured live in the ledgers (ledger.h); how a run starts
// and what it returns are shared with the gRPC transport (run.h, result.h).
#include "loadgen/resp_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "loadgen/resp_engine.h"
#include "loadgen/result.h"
#include "loadgen/run.h"

namespace switchyard::loadgen {
namespace resp {
namespace {

// How long the calling thread has waited, runnable, for a CPU (the kernel's schedstat run_delay);
// -1 where the kernel does not say.
std::int64_t ThreadRunQueueWaitNs() {
  std::ifstream file("/proc/thread-self/schedstat");
  std::int64_t running = 0, waiting = -1;
  file >> running >> waiting;
  return file ? waiting : -1;
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

}  // namespace

void Worker::Run(std::int64_t start_ns) {
  ledger.Begin(start_ns);
  for (auto& connection : connections) connection->Start();
  Tick();
  if (ledger.config.busy_poll) {
    // Timers are checked here rather than through the kernel's timer: spinning only pays off
    // if nothing waits for an interrupt.
    while (!io.stopped()) {
      io.poll();
      if (ledger.config.rate > 0) {
        const std::int64_t now = NowNs();
        for (auto& connection : connections) connection->PollSchedule(now);
      }
    }
  } else if (ledger.config.rate > 0) {
    RunOpenLoop();
  } else {
    io.run();
  }
  const std::int64_t waited = ThreadRunQueueWaitNs();
  if (run_queue_wait_start_ns_ >= 0 && waited >= run_queue_wait_start_ns_)
    ledger.stats.run_queue_wait_ns = waited - run_queue_wait_start_ns_;
  ledger.Publish();
}

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
void Worker::RunOpenLoop() {
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
      if (ledger.Measured(before)) ledger.stats.spin_ns += spun;
    }
  }
}

bool Worker::ReplyDueSoon() const {
  return spin.enabled() && awaiting_replies_ > 0 && NowNs() - last_send_ns_ < kReplySpinNs &&
         tick_spin_ns_ < kTickSpinBudgetNs;
}

// Before sleeping: the timer set for the earliest waiting connection, unless it already is.
// Its wake-ups teach the spin window how late this thread's sleeps end.
void Worker::ArmWakeTimer() {
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

// A few times a second: the ledger's tick (Ctrl-C, the drain, live figures); then, for the
// next tick, a fresh budget for polling while replies are owed, and the run-queue wait so far
// once the warm-up is over.
void Worker::Tick() {
  if (AllDone()) return;
  const std::int64_t now = NowNs();
  ledger.Tick(now, connections);
  if (AllDone()) return;
  tick_spin_ns_ = 0;
  if (run_queue_wait_start_ns_ < 0 && ledger.Measured(now))
    run_queue_wait_start_ns_ = ThreadRunQueueWaitNs();
  tick_.expires_after(std::chrono::milliseconds(100));
  tick_.async_wait([this](std::error_code error) {
    if (!error) Tick();
  });
}

}  // namespace resp

pb::LoadResult RunRespLoad(const LoadConfig& config, LiveStats* live) {
  using resp::Connection, resp::Worker, resp::tcp;
  const unsigned threads = PrepareRun(config);
  const Workload workload = MakeWorkload(config);
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
  for (unsigned own = 0; own < OwnConnections(config); ++own) {
    const unsigned c = RunConnection(config, own);
    Worker& worker = *workers[own % threads];
    tcp::socket socket(worker.io);
    resp::ConnectWithin(socket, endpoints, config.connect_timeout_seconds, &error);
    if (error == asio::error::timed_out) {
      char why[160];
      std::snprintf(why, sizeof why,
                    "no answer within %gs (after %u connections: the server is not accepting, "
                    "or its listen backlog is full)",
                    config.connect_timeout_seconds, own);
      throw std::runtime_error("cannot connect to " + target + ": " + why);
    }
    if (error) {
      throw std::runtime_error("cannot connect to " + target + ": " + error.message() + " (after " +
                               std::to_string(own) + " connections)");
    }
    socket.set_option(tcp::no_delay(true));
    socket.non_blocking(true);
    worker.connections.push_back(std::make_unique<Connection>(
        worker, std::move(socket), ConnectionQuota(config, c), ConnectionSeed(config, c)));
  }
  RunTotals run = RunWorkers(config, workers);
  return MakeResult(config, run);
}

}  // namespace switchyard::loadgen
