// What is particular to prefork: a worker killed outright is replaced while the other workers'
// clients lose nothing, even when workers are killed again and again mid-request (some holding a
// store lock), and one killed inside the store's allocator turns off only writes that need memory;
// INCR from clients on different processes loses no update; the master's
// metrics sum every process, including workers that have exited; SIGTERM leaves no process
// behind. Real server processes, real sockets, real signals.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

// The processes whose parent is `parent`, from /proc/<pid>/stat.
std::set<int> ChildrenOf(int parent) {
  std::set<int> children;
  DIR* proc = opendir("/proc");
  while (dirent* entry = readdir(proc)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto name_end = line.rfind(')');
    if (name_end == std::string::npos) continue;
    std::istringstream fields(line.substr(name_end + 2));
    char state;
    int ppid = 0;
    if (fields >> state >> ppid && ppid == parent) children.insert(pid);
  }
  closedir(proc);
  return children;
}

// Waits until `parent` has `count` children, none of them `gone` (a killed child: until it has
// been reaped and replaced); returns them (as they were after 10 s if that did not happen).
std::set<int> WaitForChildren(int parent, std::size_t count, int gone = 0) {
  std::set<int> children;
  for (int attempt = 0; attempt < 500; ++attempt) {
    children = ChildrenOf(parent);
    if (children.size() == count && !children.count(gone)) break;
    std::this_thread::sleep_for(20ms);
  }
  return children;
}

// The pool supervisor: the master's one child.
int SupervisorOf(const ServerProcess& server) {
  const std::set<int> children = WaitForChildren(server.pid(), 1);
  return children.size() == 1 ? *children.begin() : -1;
}

// The pid of the worker serving `client`, from INFO's process_id.
int WorkerPid(Client& client) {
  Reply info = client.Command({"INFO"});
  if (!info || info->type != REDIS_REPLY_STRING) return -1;
  const std::string text(info->str, info->len);
  const auto at = text.find("process_id:");
  return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 11);
}

std::uint64_t VoluntarySwitches(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoull(line.substr(24));
  }
  return 0;
}

bool Exists(int pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

TEST(Prefork, SigkilledWorkerIsReplacedAndOtherClientsMidPipelineLoseNothing) {
  constexpr std::size_t kWorkers = 4;
  ServerProcess server("prefork", {"--workers", std::to_string(kWorkers)});
  const int supervisor = SupervisorOf(server);
  ASSERT_GT(supervisor, 0);
  const std::set<int> workers = WaitForChildren(supervisor, kWorkers);
  ASSERT_EQ(workers.size(), kWorkers);

  Client victim(server.port());
  const int victim_pid = WorkerPid(victim);
  ASSERT_TRUE(workers.count(victim_pid)) << victim_pid;

  // Three clients on the other three workers, each sending pipelines of INCR and ECHO.
  constexpr int kClients = 3, kRounds = 40, kPipeline = 200;
  std::atomic<int> rounds_done{0}, wrong_replies{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Client client(server.port());
      const std::string key = "counter" + std::to_string(c);
      long long expected = 0;
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kPipeline; ++i) {
          if (i % 2 == 0)
            client.Append({"INCR", key});
          else
            client.Append({"ECHO", key + ":" + std::to_string(i)});
        }
        for (int i = 0; i < kPipeline; ++i) {
          Reply reply = client.GetReply();
          const bool right =
              reply &&
              (i % 2 == 0 ? reply->type == REDIS_REPLY_INTEGER && reply->integer == ++expected
                          : std::string(reply->str, reply->len) == key + ":" + std::to_string(i));
          if (!right) ++wrong_replies;
        }
        ++rounds_done;
      }
    });
  }
  for (int waited = 0; rounds_done.load() < kClients * 3 && waited < 30000; ++waited)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(kill(victim_pid, SIGKILL), 0);
  const int rounds_at_kill = rounds_done.load();
  for (auto& thread : clients) thread.join();
  EXPECT_LT(rounds_at_kill, kClients * kRounds) << "the kill came after the pipelines ended";
  EXPECT_EQ(wrong_replies.load(), 0);
  Client check(server.port());
  for (int c = 0; c < kClients; ++c) {
    Reply value = check.Command({"GET", "counter" + std::to_string(c)});
    ASSERT_TRUE(value);
    EXPECT_EQ(std::string(value->str, value->len), std::to_string(kRounds * kPipeline / 2));
  }
  Reply dead = victim.Command({"PING"});
  EXPECT_FALSE(dead && dead->type == REDIS_REPLY_STATUS) << "the killed worker still answered";

  // The pool is back to N, with a new process in the dead one's place.
  const std::set<int> after = WaitForChildren(supervisor, kWorkers, victim_pid);
  EXPECT_EQ(after.size(), kWorkers);
  EXPECT_FALSE(after.count(victim_pid));
  EXPECT_EQ(MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_os_processes"),
            2 + kWorkers);

  // SIGTERM stops everything, and every process is reaped (a zombie would still exist).
  EXPECT_EQ(server.Stop(SIGTERM), 0);
  for (int pid : after) EXPECT_FALSE(Exists(pid)) << "worker " << pid << " left behind";
  EXPECT_FALSE(Exists(supervisor)) << "supervisor left behind";
}

// A worker killed while it holds the store allocator's lock (Boost's allocator, which cannot be
// checked or repaired): the next worker to need it finds the death, and from then on every worker
// refuses writes that need new memory with a clear error, counted, and goes on serving the rest.
// The test hook makes every worker die at its first allocation, so the first SET kills one.
TEST(Prefork, WorkerKilledInsideTheAllocatorTurnsOffOnlyWritesThatNeedMemory) {
  constexpr std::size_t kWorkers = 4;
  setenv("SWITCHYARD_TEST_DIE_IN_STORE_ALLOCATOR", "1", 1);
  ServerProcess server("prefork", {"--workers", std::to_string(kWorkers)});
  unsetenv("SWITCHYARD_TEST_DIE_IN_STORE_ALLOCATOR");
  const int supervisor = SupervisorOf(server);
  ASSERT_EQ(WaitForChildren(supervisor, kWorkers).size(), kWorkers);
  Client bystander(server.port());  // connected before the death, on another worker

  Client victim(server.port());
  const int victim_pid = WorkerPid(victim);
  Reply lost = victim.Command({"SET", "first", "v"});
  EXPECT_FALSE(lost && lost->type == REDIS_REPLY_STATUS) << "the worker did not die";
  const std::set<int> after = WaitForChildren(supervisor, kWorkers, victim_pid);
  EXPECT_EQ(after.size(), kWorkers);
  EXPECT_FALSE(after.count(victim_pid)) << "the worker was not replaced";

  Client client(server.port());
  Reply refused = client.Command({"SET", "second", "v"});
  ASSERT_TRUE(refused);
  ASSERT_EQ(refused->type, REDIS_REPLY_ERROR);
  EXPECT_EQ(std::string(refused->str, refused->len),
            "ERR store allocator may be damaged (a process died inside it): writes that need new "
            "memory are refused until the server restarts");
  Reply incr = bystander.Command({"INCR", "counter"});  // a new key: needs memory
  ASSERT_TRUE(incr);
  EXPECT_EQ(incr->type, REDIS_REPLY_ERROR);
  for (Client* c : {&client, &bystander}) {
    Reply pong = c->Command({"PING"});
    ASSERT_TRUE(pong);
    EXPECT_EQ(std::string(pong->str, pong->len), "PONG");
    Reply missing = c->Command({"GET", "second"});
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->type, REDIS_REPLY_NIL);
    Reply deleted = c->Command({"DEL", "first", "second"});
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted->type, REDIS_REPLY_INTEGER);
  }
  Reply info = client.Command({"INFO"});
  ASSERT_TRUE(info);
  EXPECT_NE(std::string(info->str, info->len).find("store_allocator_damaged:1"), std::string::npos);
  EXPECT_EQ(MetricValue(ScrapeMetrics(server.metrics_port()),
                        "switchyard_request_errors_total{kind=\"store_damaged\"}"),
            2);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

TEST(Prefork, IncrFromEveryWorkerLosesNoUpdate) {
  constexpr int kWorkers = 4, kIncrements = 1000, kPipeline = 50;
  ServerProcess server("prefork", {"--workers", std::to_string(kWorkers)});
  std::vector<std::unique_ptr<Client>> clients;
  std::set<int> pids;
  for (int i = 0; i < kWorkers; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    pids.insert(WorkerPid(*clients.back()));
  }
  EXPECT_EQ(pids.size(), static_cast<std::size_t>(kWorkers)) << "one process a connection";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& client : clients) {
    threads.emplace_back([&failures, &client] {
      for (int sent = 0; sent < kIncrements; sent += kPipeline) {
        for (int i = 0; i < kPipeline; ++i) client->Append({"INCR", "shared"});
        for (int i = 0; i < kPipeline; ++i) {
          Reply reply = client->GetReply();
          if (!reply || reply->type != REDIS_REPLY_INTEGER) ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  Reply total = clients[0]->Command({"GET", "shared"});
  ASSERT_TRUE(total);
  EXPECT_EQ(std::string(total->str, total->len), std::to_string(kWorkers * kIncrements));
}

TEST(Prefork, MetricsSumEveryProcessIncludingExitedWorkers) {
  ServerProcess server("prefork", {"--workers", "2"});
  const int supervisor = SupervisorOf(server);
  ASSERT_EQ(WaitForChildren(supervisor, 2).size(), 2u);
  auto first = std::make_unique<Client>(server.port());
  Client second(server.port());
  const int first_pid = WorkerPid(*first);
  ASSERT_NE(first_pid, WorkerPid(second));
  for (int i = 0; i < 3000; ++i) first->Command({"PING"});
  for (int i = 0; i < 100; ++i) second.Command({"PING"});
  // Many requests found the worker asleep in recv: it switched out each time (about one in ten
  // under TSan, whose slower worker more often finds the next request already there). Enough
  // switches that losing them would show below, whatever the rest of the server adds meanwhile.
  const std::uint64_t first_switches = VoluntarySwitches(first_pid);
  EXPECT_GE(first_switches, 100u);

  const std::string before = ScrapeMetrics(server.metrics_port());
  EXPECT_EQ(MetricValue(before, "switchyard_requests_total{command=\"ping\"}"), 3100);
  EXPECT_EQ(MetricValue(before, "switchyard_connections_active"), 2);
  EXPECT_EQ(MetricValue(before, "switchyard_os_processes"), 4);  // master, supervisor, 2 workers
  const double switches_before =
      MetricValue(before, "switchyard_os_context_switches_total{kind=\"voluntary\"}");
  const double cpu_before = MetricValue(before, "switchyard_cpu_seconds_total{mode=\"user\"}") +
                            MetricValue(before, "switchyard_cpu_seconds_total{mode=\"system\"}");
  EXPECT_GE(switches_before, static_cast<double>(first_switches));

  // The first worker dies; what it did must stay in the sums.
  first.reset();
  ASSERT_EQ(kill(first_pid, SIGKILL), 0);
  std::set<int> workers;
  for (int attempt = 0; attempt < 500; ++attempt) {
    workers = ChildrenOf(supervisor);
    if (workers.size() == 2 && !workers.count(first_pid)) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_FALSE(workers.count(first_pid));
  Client third(server.port());  // served by the replacement
  for (int i = 0; i < 10; ++i) third.Command({"PING"});

  const std::string after = ScrapeMetrics(server.metrics_port());
  EXPECT_EQ(MetricValue(after, "switchyard_requests_total{command=\"ping\"}"), 3110);
  EXPECT_EQ(MetricValue(after, "switchyard_request_duration_seconds_count{command=\"ping\"}"),
            3110);
  EXPECT_EQ(MetricValue(after, "switchyard_connections_active"), 2);
  EXPECT_EQ(MetricValue(after, "switchyard_os_processes"), 4);
  // Had the dead worker's switches vanished, the total would have dropped by first_switches.
  EXPECT_GE(MetricValue(after, "switchyard_os_context_switches_total{kind=\"voluntary\"}"),
            switches_before);
  EXPECT_GE(MetricValue(after, "switchyard_cpu_seconds_total{mode=\"user\"}") +
                MetricValue(after, "switchyard_cpu_seconds_total{mode=\"system\"}"),
            cpu_before);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// The case: workers killed with SIGKILL again and again while eight clients hammer INCR and
// SET on two keys, so workers die mid-request. Every other kill picks the worker of one of two
// more clients that GET a 4 MiB value in a loop: that copy runs under the shard lock, so some of
// those workers die holding it. The server keeps answering within a bounded time, and each
// counter equals the increments acknowledged plus at most those in flight on a killed connection
// (sent, perhaps applied, never answered). The SET values keep one size, so they are written in
// place: a death inside the allocator, which resizing writes need, is the window
// servers/common/store_shard.cc says it does not close.
TEST(Prefork, WorkersKilledRepeatedlyUnderLoadLoseOnlyTheirOwnRequests) {
  constexpr std::size_t kWorkers = 12;
  constexpr int kClients = 8, kReaders = 2, kKeys = 2, kWrites = 8, kKills = 40;
  const std::string big(4 << 20, 'b');
  ServerProcess server("prefork", {"--workers", std::to_string(kWorkers)});
  const int supervisor = SupervisorOf(server);
  ASSERT_GT(supervisor, 0);
  ASSERT_EQ(WaitForChildren(supervisor, kWorkers).size(), kWorkers);
  {
    Client setup(server.port());
    Reply reply = setup.Command({"SET", "big", big});
    ASSERT_TRUE(reply && reply->type == REDIS_REPLY_STATUS);
  }

  std::atomic<bool> running{true};
  std::atomic<long long> acked[kKeys] = {}, unanswered[kKeys] = {};
  std::atomic<long long> rounds{0}, broken_connections{0}, wrong_replies{0}, slowest_ms{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // Each call below is bounded by the client's 10 s timeout; the loop ends when told to.
      while (running.load()) {
        std::unique_ptr<Client> client;
        try {
          client = std::make_unique<Client>(server.port());
        } catch (const std::exception&) {
          ++broken_connections;
          std::this_thread::sleep_for(10ms);
          continue;
        }
        for (long long round = 0; running.load(); ++round) {
          const auto started = std::chrono::steady_clock::now();
          for (int i = 0; i < kWrites; ++i) {
            const std::string key = std::to_string((c + i / 2) % kKeys);
            if (i % 2 == 0) {
              client->Append({"INCR", "n" + key});
            } else {
              client->Append({"SET", "s" + key, std::string(32, 'a' + (round + i) % 26)});
            }
          }
          int i = 0;
          for (; i < kWrites; ++i) {
            Reply reply = client->GetReply();
            if (!reply) break;  // the worker was killed
            const bool incr = i % 2 == 0;
            if (reply->type != (incr ? REDIS_REPLY_INTEGER : REDIS_REPLY_STATUS)) {
              ++wrong_replies;
            } else if (incr) {
              ++acked[(c + i / 2) % kKeys];
            }
          }
          const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - started)
                                   .count();
          slowest_ms.store(std::max(slowest_ms.load(), ms));
          if (i < kWrites) {
            for (; i < kWrites; ++i) {
              if (i % 2 == 0) ++unanswered[(c + i / 2) % kKeys];
            }
            ++broken_connections;
            break;
          }
          ++rounds;
        }
      }
    });
  }
  std::atomic<int> reader_worker[kReaders] = {};
  std::atomic<long long> big_reads{0};
  for (int r = 0; r < kReaders; ++r) {
    clients.emplace_back([&, r] {
      while (running.load()) {
        try {
          Client client(server.port());
          reader_worker[r] = WorkerPid(client);
          for (Reply value; running.load() && (value = client.Command({"GET", "big"}));) {
            if (value->type != REDIS_REPLY_STRING || std::string(value->str, value->len) != big)
              ++wrong_replies;
            ++big_reads;
          }
        } catch (const std::exception&) {
          std::this_thread::sleep_for(10ms);
        }
      }
    });
  }
  std::mt19937 random(7);
  int kills = 0;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + random() % 30));
    int victim = k % 2 == 1 ? reader_worker[(k / 2) % kReaders].load() : 0;
    if (victim <= 0) {
      const std::set<int> workers = ChildrenOf(supervisor);
      if (workers.empty()) continue;
      victim = *std::next(workers.begin(), random() % workers.size());
    }
    kills += kill(victim, SIGKILL) == 0;
  }
  const long long rounds_after_kills = rounds.load();
  std::this_thread::sleep_for(500ms);
  EXPECT_GT(rounds.load(), rounds_after_kills) << "the server stopped answering";
  running = false;
  for (auto& thread : clients) thread.join();

  EXPECT_EQ(wrong_replies.load(), 0);
  EXPECT_GT(broken_connections.load(), 0) << "no kill hit a busy worker";
  // Generous: a wedged shard would hold a round until the client's 10 s timeout.
  EXPECT_LT(slowest_ms.load(), 5000) << "a request waited for seconds";
  Client check(server.port());
  for (int k = 0; k < kKeys; ++k) {
    Reply counter = check.Command({"GET", "n" + std::to_string(k)});
    ASSERT_TRUE(counter && counter->type == REDIS_REPLY_STRING);
    const long long value = std::stoll(std::string(counter->str, counter->len));
    EXPECT_GE(value, acked[k].load()) << "an acknowledged increment was lost";
    EXPECT_LE(value, acked[k].load() + unanswered[k].load()) << "an increment was applied twice";
    Reply set = check.Command({"GET", "s" + std::to_string(k)});
    ASSERT_TRUE(set && set->type == REDIS_REPLY_STRING);
    const std::string written(set->str, set->len);
    EXPECT_EQ(written, std::string(32, written[0])) << "a torn value";
  }
  Reply info = check.Command({"INFO"});
  const std::string text = info ? std::string(info->str, info->len) : "";
  const auto repairs = text.find("store_lock_repairs:");
  std::cout << "[   info   ] " << kills << " workers killed, " << broken_connections.load()
            << " connections lost, " << rounds.load() << " pipelines answered, slowest "
            << slowest_ms.load() << " ms, " << big_reads.load() << " big GETs, INCRs acknowledged "
            << acked[0] + acked[1] << " (+ at most " << unanswered[0] + unanswered[1]
            << " unanswered), "
            << (repairs == std::string::npos
                    ? "?"
                    : text.substr(repairs, text.find('\r', repairs) - repairs))
            << "\n";
  EXPECT_EQ(WaitForChildren(supervisor, kWorkers).size(), kWorkers);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace switchyard::testing
