// End-to-end, the result: what it says about a run beyond its latencies (a delayed-ACK stall
// named, the client's CPU taken by other work), and a run made by three processes, merged exactly.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "loadgen/e2e_support.h"
#include "loadgen/histogram.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using switchyard::testing::RunBinary;

// Nagle left on in a server shows as the delayed-ACK stall signature; our own models set
// TCP_NODELAY and do not show it. Closed loop, one request in flight a connection: once a split
// reply's first part is read, the client has nothing to send until the rest comes, so only its
// delayed-ACK timer releases it. (In an open loop the client's next request carries the ACK, or,
// with gaps longer than the timer, the kernel acknowledges at once on the read, not being in
// "ping-pong" mode: a stall then ends early and does not gather at 40 ms.)
TEST_F(LoadE2eTest, ANagleStallIsNamedAndOurServerHasNone) {
  CannedResponder nagle("PING\r\n", "+PONG\r\n", 4);
  const pb::LoadResult stalled =
      Load(nagle.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nagle");
  EXPECT_EQ(stalled.failed(), 0u);
  EXPECT_TRUE(stalled.delayed_ack_stall()) << stalled.delayed_ack_stall_fraction() << "\n"
                                           << last_output_;
  // About one reply in four waited for the delayed ACK, and the median did not.
  EXPECT_GT(stalled.delayed_ack_stall_fraction(), 0.1) << last_output_;
  EXPECT_LT(stalled.latency().p50(), 0.004) << last_output_;
  EXPECT_NE(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;

  switchyard::testing::ServerProcess server("coroutine");
  const pb::LoadResult clean = Load(
      server.port(), {"-d", "1s", "--warmup", "200ms", "-c", "4", "--mix", "ping:1"}, "nodelay");
  EXPECT_EQ(clean.failed(), 0u);
  EXPECT_FALSE(clean.delayed_ack_stall()) << clean.delayed_ack_stall_message();
  EXPECT_TRUE(clean.delayed_ack_stall_message().empty());
  EXPECT_EQ(last_output_.find("DELAYED-ACK STALL"), std::string::npos) << last_output_;
}

// A load generator that shares its CPU with a busy process waits for it, and lags its schedule for
// that reason alone: the result says how long its threads waited for the CPU, and a run flagged
// for lag says that other work held it (the machine, not the load generator's code).
TEST_F(LoadE2eTest, ACpuSharedWithABusyProcessShowsAsRunQueueWait) {
  RedisServer redis;
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof original, &original), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = CPU_SETSIZE - 1; cpu >= 0; --cpu) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  const pid_t spinner = fork();
  if (spinner == 0) {  // busy on that CPU for at most 10 s, killed sooner
    sched_setaffinity(0, sizeof one, &one);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
    }
    _exit(0);
  }
  // The load generator inherits this thread's CPU set.
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const pb::LoadResult result =
      Load(redis.port(), {"--rate", "2000", "-d", "1s", "--warmup", "200ms", "-c", "8"}, "shared");
  sched_setaffinity(0, sizeof original, &original);
  kill(spinner, SIGKILL);
  waitpid(spinner, nullptr, 0);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_GT(result.client_run_queue_wait_seconds(), 0.01) << last_output_;
  if (result.client_limited()) {
    EXPECT_NE(result.client_limited_reason().find("held by other work"), std::string::npos)
        << result.client_limited_reason();
  }
}

// Requests the server has served so far, every command and process summed.
double ServedRequests(const switchyard::testing::ServerProcess& server) {
  const std::string scrape = switchyard::testing::ScrapeMetrics(server.metrics_port());
  double total = 0;
  std::istringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("switchyard_requests_total{", 0) == 0) {
      total += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

// Three load-generator processes with one --start-at make one run: the merge holds every request
// the parts sent and the server served, the rate asked, and the parts' histograms bucket for
// bucket; a worker that comes late fails, and a merge refuses parts of another run.
TEST_F(LoadE2eTest, ThreeWorkersMakeOneRun) {
  switchyard::testing::ServerProcess server("coroutine");
  const double served_before = ServedRequests(server);
  // No warm-up, so that every request the server serves is in a measured part; --spin 0 keeps
  // three open-loop processes from spinning on two CPUs. The lead before the start leaves a
  // sanitizer build the time to start and connect.
  const std::vector<std::string> flags = {"--rate", "3000", "-d", "4s",     "--warmup",
                                          "0",      "-c",   "10", "--spin", "0"};
  const std::vector<pb::LoadResult> parts =
      LoadWorkers(server.port(), flags, 3, "worker", std::chrono::seconds(3));
  const double served = ServedRequests(server) - served_before;
  const std::string merged_path = TempFile("merged.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "merge", worker_json_[2], worker_json_[0], worker_json_[1], "--json",
                       merged_path},
                      &output),
            0)
      << output;
  EXPECT_NE(output.find("merged from its 3 load-generator processes"), std::string::npos) << output;
  const pb::LoadResult merged = ReadResultFile(merged_path);

  std::uint64_t requests = 0;
  double target = 0;
  Histogram sum;
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(parts[i].worker_index(), i);
    EXPECT_EQ(parts[i].workers(), 3u);
    EXPECT_EQ(parts[i].run_id(), parts[0].run_id());
    EXPECT_EQ(parts[i].start_at(), parts[0].start_at());
    EXPECT_EQ(parts[i].failed(), 0u) << worker_output_[i];
    for (unsigned j = 0; j < i; ++j) EXPECT_NE(parts[i].seed(), parts[j].seed());
    requests += parts[i].requests();
    target += parts[i].target_rate();
    sum.Merge(FromProto(parts[i].histogram()));
  }
  EXPECT_EQ(
      parts[0].worker_connections() + parts[1].worker_connections() + parts[2].worker_connections(),
      10u);
  EXPECT_DOUBLE_EQ(target, 3000);
  EXPECT_EQ(merged.requests(), requests);
  EXPECT_EQ(static_cast<double>(merged.requests()), served);
  EXPECT_NEAR(merged.throughput(), 3000, 30) << output;  // within 1% of the rate asked
  EXPECT_NEAR(merged.sent_rate(), 3000, 30) << output;
  EXPECT_EQ(FromProto(merged.histogram()).Buckets(), sum.Buckets());
  EXPECT_EQ(merged.histogram().sum_ns(), sum.sum());
  EXPECT_EQ(merged.histogram().max_ns(), sum.max());

  // A worker started after the instant fails, and says why, rather than run a short part.
  std::vector<std::string> late = {
      "load", "--port",     std::to_string(server.port()), "--workers", "3", "--worker-index",
      "1",    "--start-at", parts[0].start_at(),           "-q"};
  late.insert(late.end(), flags.begin(), flags.end());
  EXPECT_EQ(RunBinary(late, &output), 1) << output;
  EXPECT_NE(output.find("worker 1 of 3 is"), std::string::npos) << output;
  EXPECT_NE(output.find("late for --start-at"), std::string::npos) << output;

  // A part of another run is refused, as are a run with a worker missing or repeated.
  const std::vector<std::string> run = worker_json_;
  const std::vector<pb::LoadResult> other =
      LoadWorkers(server.port(), {"-n", "300", "--warmup", "0", "-c", "4"}, 2, "other",
                  std::chrono::seconds(3));
  EXPECT_EQ(other[0].requests() + other[1].requests(), 300u);  // --requests split exactly
  EXPECT_NE(other[0].run_id(), parts[0].run_id());
  EXPECT_EQ(RunBinary({"load", "merge", run[0], run[1], worker_json_[1]}, &output), 2) << output;
  EXPECT_NE(output.find("results of different runs do not merge"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "merge", run[0], run[1]}, &output), 2) << output;
  EXPECT_NE(output.find("worker 2 of the run's 3 is missing"), std::string::npos) << output;
  EXPECT_EQ(RunBinary({"load", "merge", run[0], run[1], run[1]}, &output), 2) << output;
  EXPECT_NE(output.find("is worker 1 again"), std::string::npos) << output;
}

}  // namespace
}  // namespace switchyard::loadgen
