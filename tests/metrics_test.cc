// The metrics vocabulary of DESIGN.md, through the real binary: every model's scrape passes
// `promtool check metrics` (Prometheus's own linter) and holds every name; tasks alive follow the
// connections; an idle connection holds no I/O buffer; the run-queue wait never goes backwards
// while threads come and go.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/models.h"
#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

// Light sizes for a test run (prefork's default is 256 processes).
std::vector<std::string> LightFlags(const std::string& model) {
  if (model == "prefork") return {"--workers", "8"};
  return {};
}

// Some traffic of every kind, so that every labelled series has moved: requests, an error.
void DriveTraffic(const std::string& model, std::uint16_t port) {
  if (model == "grpc") return;  // speaks kv.proto; its counters are exported at 0 all the same
  int exit_code = -1;
  const std::string output = RunShell(
      "redis-benchmark -p " + std::to_string(port) + " -t ping,set,get,incr -n 500 -c 4 -q 2>&1",
      &exit_code);
  ASSERT_EQ(exit_code, 0) << output;
  Client client(port);
  Reply reply = client.Command({"NOSUCH"});
  ASSERT_TRUE(reply);
}

class ModelMetrics : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelMetrics, PromtoolFindsNothingAndEveryNameIsThere) {
  ServerProcess server(GetParam(), LightFlags(GetParam()));
  DriveTraffic(GetParam(), server.port());
  const std::string scrape = ScrapeMetrics(server.metrics_port());
  char path[] = "/tmp/switchyard-scrape-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << scrape;
  int exit_code = -1;
  const std::string complaints =
      RunShell(std::string(PROMTOOL) + " check metrics < " + path + " 2>&1", &exit_code);
  std::remove(path);
  EXPECT_EQ(exit_code, 0) << complaints;
  EXPECT_EQ(complaints, "") << "promtool complains about " << GetParam() << "'s scrape";

  for (const char* series : {
           "switchyard_requests_total{command=\"ping\"}",
           "switchyard_request_errors_total{kind=\"protocol\"}",
           "switchyard_request_duration_seconds_count{command=\"get\"}",
           "switchyard_connections_active",
           "switchyard_connections_accepted_total",
           "switchyard_connections_rejected_total",
           "switchyard_os_context_switches_total{kind=\"voluntary\"}",
           "switchyard_os_context_switches_total{kind=\"involuntary\"}",
           "switchyard_user_switches_total",
           "switchyard_run_queue_wait_seconds_total",
           "switchyard_cpu_seconds_total{mode=\"user\"}",
           "switchyard_cpu_seconds_total{mode=\"system\"}",
           "switchyard_memory_bytes{kind=\"rss\"}",
           "switchyard_memory_bytes{kind=\"pss\"}",
           "switchyard_os_threads",
           "switchyard_os_processes",
           "switchyard_tasks_active",
       }) {
    EXPECT_GE(MetricValue(scrape, series), 0) << series << " missing from " << GetParam();
  }
  EXPECT_NE(scrape.find("switchyard_build_info{model=\"" + GetParam() + "\""), std::string::npos);
  EXPECT_GE(MetricValue(scrape, "switchyard_os_processes"), 1);
}

// Waits up to 5 s for the scraped value of `series` to become `want`; returns the last value.
double AwaitValue(std::uint16_t metrics_port, const std::string& series, double want) {
  double value = -1;
  for (int i = 0; i < 500; ++i) {
    value = MetricValue(ScrapeMetrics(metrics_port), series);
    if (value == want) break;
    std::this_thread::sleep_for(10ms);
  }
  return value;
}

// A coroutine, fiber or thread per connection: the units alive follow the connections. One model
// of each unit that serves one connection (a chosen few, not the model list).
TEST(TasksActive, FollowTheConnectionsOfEachModel) {
  for (const std::string model : {"coroutine", "fiber", "thread_per_conn"}) {
    ServerProcess server(model);
    {
      std::vector<std::unique_ptr<Client>> clients;
      for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<Client>(server.port()));
        ASSERT_TRUE(clients.back()->Command({"PING"}));  // its unit is running by now
      }
      EXPECT_EQ(AwaitValue(server.metrics_port(), "switchyard_tasks_active", 3), 3) << model;
    }
    EXPECT_EQ(AwaitValue(server.metrics_port(), "switchyard_tasks_active", 0), 0) << model;
  }
}

// A pool of worker threads or processes: the units alive are the workers, busy or not.
TEST(TasksActive, AreTheWorkersOfAPool) {
  for (const std::string model : {"thread_pool", "prefork"}) {
    ServerProcess server(model, {"--workers", "3"});
    Client client(server.port());
    ASSERT_TRUE(client.Command({"PING"}));
    EXPECT_EQ(AwaitValue(server.metrics_port(), "switchyard_tasks_active", 3), 3) << model;
  }
}

// A connection waiting for its next request holds no buffer of its own (io_buffers.h): after a
// request each, 64 silent connections leave what their threads keep cached, not a buffer each.
// One client sends its request a byte at a time first, so that reads find a partial request.
TEST(IoBuffers, AnIdleConnectionHoldsNone) {
  // The models that wait for input without a buffer (not the model list).
  const std::vector<std::pair<std::string, std::vector<std::string>>> servers = {
      {"coroutine", {"--threads", "1"}},
      {"fiber", {"--threads", "1"}},
      {"thread_pool", {"--workers", "2"}},
  };
  for (const auto& [model, flags] : servers) {
    ServerProcess server(model, flags);
    RawConnection slow(server.port());
    for (const char byte : std::string("PING\r\n")) {
      slow.Send(std::string_view(&byte, 1));
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(slow.ReadSome(7), "+PONG\r\n") << model;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 64; ++i) {
      clients.push_back(std::make_unique<Client>(server.port()));
      ASSERT_TRUE(clients.back()->Command({"PING"})) << model;
    }
    const double bytes =
        MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_io_buffer_bytes");
    EXPECT_LE(bytes, 16 * 4096) << model << " holds " << bytes / 65 << " B a connection";
  }
}

// thread_per_conn retires a thread with every connection, and a thread's schedstat vanishes with
// it: the counter must keep what those threads waited and never go backwards.
TEST(RunQueueWait, NeverGoesBackwardsWhileThreadsComeAndGo) {
  ServerProcess server("thread_per_conn");
  double last =
      MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_run_queue_wait_seconds_total");
  ASSERT_GE(last, 0);
  // Two CPU-hungry clients on a connection each, while others connect and hang up: threads wait
  // for a CPU and exit all along.
  std::thread churn([&] {
    RunShell("redis-benchmark -p " + std::to_string(server.port()) +
             " -t ping -n 3000 -c 8 -k 0 -q >/dev/null 2>&1");
  });
  for (int i = 0; i < 40; ++i) {
    const double now = MetricValue(ScrapeMetrics(server.metrics_port()),
                                   "switchyard_run_queue_wait_seconds_total");
    EXPECT_GE(now, last) << "scrape " << i;
    last = now;
    std::this_thread::sleep_for(20ms);
  }
  churn.join();
  const double after =
      MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_run_queue_wait_seconds_total");
  EXPECT_GE(after, last);
  EXPECT_GT(after, 0) << "3000 connections, each a thread, and not one waited for a CPU?";
}

// Nanoseconds on a CPU of every thread of `pid` and of all its descendants, from schedstat.
double OnCpuSecondsOfTree(int pid) {
  std::vector<int> pids = {pid};
  double seconds = 0;
  for (std::size_t i = 0; i < pids.size() && i < 10000; ++i) {
    std::error_code error;
    const std::string proc = "/proc/" + std::to_string(pids[i]) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(proc, error)) {
      std::ifstream schedstat(task.path() / "schedstat");
      std::uint64_t ns = 0;
      if (schedstat >> ns) seconds += static_cast<double>(ns) / 1e9;
      std::ifstream children(task.path() / "children");
      for (int child; children >> child;) pids.push_back(child);
    }
  }
  return seconds;
}

// prefork's CPU is summed over its processes. /proc/<pid>/stat counts whole 10 ms ticks,
// truncated, which lost about a quarter of the CPU of lightly used workers; the metric must agree
// with the kernel's exact per-thread time on a CPU, read just before and just after the scrape.
TEST(CpuSeconds, PreforkCountsEveryWorkerExactly) {
  ServerProcess server("prefork", {"--workers", "32"});
  RunShell("redis-benchmark -p " + std::to_string(server.port()) +
           " -t ping,get -n 20000 -c 32 -q >/dev/null 2>&1");
  const double before = OnCpuSecondsOfTree(server.pid());
  const std::string scrape = ScrapeMetrics(server.metrics_port());
  const double after = OnCpuSecondsOfTree(server.pid());
  const double metric = MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"user\"}") +
                        MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"system\"}");
  ASSERT_GT(before, 0.05) << "the load did not reach the workers";
  // The master's own part comes from getrusage in microseconds: allow a millisecond either way.
  EXPECT_GE(metric, before - 0.001);
  EXPECT_LE(metric, after + 0.001);
}

// A peer's threads end with their connections (pythreads: a thread a connection), and schedstat
// forgets a thread that has ended: the CPU it burned must still be counted once it is gone.
TEST(CpuSeconds, ThreadsThatEndedStillCount) {
  const auto& models = ModelNames();
  if (std::find(models.begin(), models.end(), "pythreads") == models.end()) {
    GTEST_SKIP() << "this build serves no Python peer (a sanitizer build tests our C++ alone)";
  }
  ServerProcess server("pythreads");
  // Ten requests of 50 ms of CPU each, on one connection whose thread ends when it closes.
  RunShell("redis-benchmark -p " + std::to_string(server.port()) +
           " -n 10 -c 1 -q SY.CPU 50000 >/dev/null 2>&1");
  const std::string scrape = ScrapeMetrics(server.metrics_port());
  const double metric = MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"user\"}") +
                        MetricValue(scrape, "switchyard_cpu_seconds_total{mode=\"system\"}");
  EXPECT_GE(metric, 0.45) << "0.5 s of CPU on a thread that has ended";
}

INSTANTIATE_TEST_SUITE_P(Models, ModelMetrics, ::testing::ValuesIn(ModelNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace switchyard::testing
