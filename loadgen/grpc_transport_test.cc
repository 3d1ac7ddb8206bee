// End-to-end: the real `switchyard load --protocol grpc` binary against the real grpc model
// (`switchyard serve --model grpc` on free loopback ports), checked with a gRPC client of its own
// and the server's metrics.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loadgen/e2e_support.h"
#include "loadgen/histogram.h"
#include "loadgen/result.h"
#include "proto/kv.grpc.pb.h"
#include "tests/server_process.h"

namespace switchyard::loadgen {
namespace {

using namespace std::chrono_literals;
using switchyard::testing::FreeLoopbackPort;
using switchyard::testing::MetricValue;
using switchyard::testing::RunBinary;
using switchyard::testing::ScrapeMetrics;
using switchyard::testing::ServerProcess;

std::unique_ptr<kv::Kv::Stub> Stub(std::uint16_t port) {
  return kv::Kv::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

std::unique_ptr<grpc::ClientContext> Call() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + 10s);
  return context;
}

// Lines of an error report, not counting the hint CLI11 adds after its own one-line errors.
std::size_t Lines(std::string text) {
  const std::string hint = "Run with --help for more information.\n";
  if (text.size() >= hint.size() && text.compare(text.size() - hint.size(), hint.size(), hint) == 0)
    text.resize(text.size() - hint.size());
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class GrpcLoadTest : public LoadE2eTest {
 protected:
  GrpcLoadTest() : LoadE2eTest("grpc") {}
};

TEST_F(GrpcLoadTest, ClosedLoopCountsEveryCallAndTheServerSeesThem) {
  ServerProcess server("grpc");
  const pb::LoadResult result = Load(server.port(),
                                     {"-n", "3000", "--warmup", "0", "-c", "6", "-t", "2", "-P",
                                      "4", "--mix", "set:1", "--keys", "50"},
                                     "closed");
  EXPECT_EQ(result.spec().protocol(), "grpc");
  ExpectEveryRequestAnswered(result, 3000);
  EXPECT_NE(last_output_.find("(gRPC)"), std::string::npos) << last_output_;
  const std::string scrape = ScrapeMetrics(server.metrics_port());
  EXPECT_EQ(MetricValue(scrape, "switchyard_requests_total{command=\"set\"}"), 3000);
  // One TCP connection per load-generator connection, not one shared channel.
  EXPECT_GE(MetricValue(scrape, "switchyard_connections_accepted_total"), 6);
  // The values landed on the loadgen's keys, at the default --value-size.
  auto stub = Stub(server.port());
  int found = 0;
  for (int k = 0; k < 50; ++k) {
    char key[32];
    std::snprintf(key, sizeof key, "key:%012d", k);
    kv::GetRequest request;
    request.set_key(key);
    kv::GetReply reply;
    ASSERT_TRUE(stub->Get(Call().get(), request, &reply).ok());
    if (reply.found()) {
      ++found;
      EXPECT_EQ(reply.value().size(), 64u);
    }
  }
  EXPECT_GT(found, 0);
}

TEST_F(GrpcLoadTest, OpenLoopSendsOnScheduleAndCorrectsForLateness) {
  ServerProcess server("grpc");
  // 2000/s for 1 s after a 200 ms warm-up: exactly 2000 intended times in the measured second.
  const pb::LoadResult result =
      Load(server.port(), {"--rate", "2000", "-d", "1s", "--warmup", "200ms", "-c", "8"}, "open");
  EXPECT_NEAR(static_cast<double>(result.requests()), 2000, 8);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_DOUBLE_EQ(result.target_rate(), 2000);
  // Achieved: the calls went out at the rate asked. Throughput is answered calls over the span to
  // the last reply, which one stall of this shared machine at the end of a 1 s run stretches, so
  // it gets a generous bound only.
  EXPECT_NEAR(result.sent_rate(), 2000, 2000 * 0.03);
  EXPECT_GT(result.throughput(), 2000 * 0.7);
  EXPECT_EQ(result.histogram_schedule_lag().total(), result.requests());
  EXPECT_GE(result.latency().max(), result.latency_uncorrected().max());
  EXPECT_GE(result.latency().mean(), result.latency_uncorrected().mean());
  EXPECT_NE(last_output_.find("uncorrected"), std::string::npos) << last_output_;
  // As in RESP mode, the pacer learned how early to wake to spin to each send time, and says
  // the window it ended with and how long it spun.
  EXPECT_GT(result.spec().spin_seconds(), 0);
  EXPECT_LE(result.spec().spin_seconds(), 0.0021);
  EXPECT_LE(result.client_spin_seconds(), result.client_cpu_seconds());
  // Sleeping until each time is due, and polling all the time, keep the same schedule.
  ExpectSleepingAndBusyPollingKeepTheSchedule(server.port());
}

// A 0.3 s stall of the server (SIGSTOP) in a constant-rate run shows in the corrected tail.
TEST_F(GrpcLoadTest, ServerStallShowsInCorrectedTail) {
  ServerProcess server("grpc");
  const pb::LoadResult result = LoadThroughAStall(server.port(), server.pid());
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_GE(result.latency().max(), 0.29);
  EXPECT_GE(result.latency().p99(), 0.15);
  EXPECT_LT(result.latency_uncorrected().p50(), result.latency().p99());
}

TEST_F(GrpcLoadTest, EveryCommandOfTheMixIncludingSimulatedWork) {
  ServerProcess server("grpc");
  LoadEveryCommand(server.port());
  const std::string scrape = ScrapeMetrics(server.metrics_port());
  double total = 0;
  for (const char* command :
       {"get", "set", "echo", "incr", "incrby", "mget", "mset", "sy.cpu", "sy.wait", "sy.block"}) {
    const double served =
        MetricValue(scrape, "switchyard_requests_total{command=\"" + std::string(command) + "\"}");
    EXPECT_GT(served, 0) << command;
    total += served;
  }
  EXPECT_EQ(total, 2000) << "ping is an Echo of nothing, counted as echo";
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// IncrBy sends each counter's increment (its number mod 10, plus 1), and MSet writes the mix's
// keys with values of --value-size, which MGet reads back.
TEST_F(GrpcLoadTest, IncrByMGetAndMSetReachTheStore) {
  ServerProcess server("grpc");
  pb::LoadResult result =
      Load(server.port(),
           {"-n", "600", "--warmup", "0", "-c", "3", "--mix", "incrby", "--keys", "30"}, "incrby");
  EXPECT_EQ(result.requests(), 600u);
  EXPECT_EQ(result.errors(), 0u);
  auto stub = Stub(server.port());
  kv::MGetRequest counters;
  for (int k = 0; k < 30; ++k) {
    char key[32];
    std::snprintf(key, sizeof key, "counter:%012d", k);
    counters.add_keys(key);
  }
  kv::MGetReply reply;
  ASSERT_TRUE(stub->MGet(Call().get(), counters, &reply).ok());
  ASSERT_EQ(reply.values_size(), 30);
  long long increments = 0;
  for (int k = 0; k < 30; ++k) {
    if (!reply.values(k).found()) continue;
    const long long value = std::stoll(reply.values(k).value());
    EXPECT_EQ(value % (k % 10 + 1), 0) << k << " = " << value;
    increments += value / (k % 10 + 1);
  }
  EXPECT_EQ(increments, 600);

  result = Load(server.port(),
                {"-n", "1000", "--warmup", "0", "-c", "2", "-P", "4", "--mix", "mget:4,mset:4",
                 "--keys", "20", "--value-size", "8-64"},
                "multi");
  ExpectEveryRequestAnswered(result, 1000);
  kv::MGetRequest keys;
  for (int k = 0; k < 20; ++k) {
    char key[32];
    std::snprintf(key, sizeof key, "key:%012d", k);
    keys.add_keys(key);
  }
  ASSERT_TRUE(stub->MGet(Call().get(), keys, &reply).ok());
  ASSERT_EQ(reply.values_size(), 20);
  for (const kv::MaybeValue& value : reply.values()) {
    ASSERT_TRUE(value.found()) << "20 keys, some 2000 pairs: all written";
    EXPECT_GE(value.value().size(), 8u);
    EXPECT_LE(value.value().size(), 64u);
  }
}

// A Kv service whose MGet answers OK with two values, whatever it was asked: a reply with a value
// missing or one too many is not the answer to an MGet of one or three keys.
class TwoValuesService final : public kv::Kv::Service {
  grpc::Status MGet(grpc::ServerContext*, const kv::MGetRequest*, kv::MGetReply* reply) override {
    reply->add_values()->set_found(false);
    reply->add_values()->set_found(false);
    return grpc::Status::OK;
  }
};

TEST_F(GrpcLoadTest, AnMGetReplyWithoutAValueAKeyIsAnError) {
  TwoValuesService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  const std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr);
  ASSERT_GT(port, 0);
  for (const auto& [mix, errors] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"mget:2", 0}, {"mget:1", 100}, {"mget:3", 100}}) {
    const pb::LoadResult result =
        Load(static_cast<std::uint16_t>(port),
             {"-n", "100", "--warmup", "0", "-c", "2", "-P", "4", "--mix", mix}, mix);
    EXPECT_EQ(result.requests(), 100u) << mix;
    EXPECT_EQ(result.errors(), errors) << mix;
    EXPECT_EQ(result.connections_lost(), 0u) << mix;
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

TEST_F(GrpcLoadTest, ErrorStatusesAreCountedAsErrors) {
  ServerProcess server("grpc");
  kv::SetRequest set;
  set.set_key("counter:000000000000");
  set.set_value("not a number");
  kv::SetReply set_reply;
  ASSERT_TRUE(Stub(server.port())->Set(Call().get(), set, &set_reply).ok());
  const pb::LoadResult result =
      Load(server.port(), {"-n", "100", "--warmup", "0", "-c", "1", "--mix", "incr", "--keys", "1"},
           "errors");
  EXPECT_EQ(result.requests(), 100u);
  EXPECT_EQ(result.errors(), 100u);
  EXPECT_EQ(result.failed(), 0u);
  EXPECT_EQ(result.connections_lost(), 0u) << "an error status is an answer, not a lost call";
}

TEST_F(GrpcLoadTest, ServerThatDiesIsReported) {
  auto server = std::make_unique<ServerProcess>("grpc");
  const std::uint16_t port = server->port();
  pb::LoadResult result;
  std::thread load([&] {
    result = Load(port, {"--rate", "1000", "-d", "3s", "--warmup", "0", "-c", "4"}, "dies");
  });
  std::this_thread::sleep_for(800ms);
  server->Stop(SIGKILL);
  load.join();
  EXPECT_EQ(result.connections_lost(), 4u);
  EXPECT_FALSE(result.first_loss().empty());
  EXPECT_LT(result.requests(), 3000u);
  EXPECT_GT(result.requests(), 0u);
  EXPECT_NE(last_output_.find("connections lost: 4"), std::string::npos) << last_output_;
}

TEST_F(GrpcLoadTest, JsonHasEveryFieldAndMergesExactly) {
  ServerProcess server("grpc");
  const pb::LoadResult a = Load(server.port(), {"-n", "1500", "--warmup", "0", "-c", "3"}, "a");
  EXPECT_EQ(a.requests(), 1500u);
  const std::string a_path = last_json_;
  std::ifstream file(a_path);
  std::stringstream text;
  text << file.rdbuf();
  for (const char* field :
       {"\"protocol\": \"grpc\"", "\"throughput\"", "\"latency\"", "\"latency_uncorrected\"",
        "\"schedule_lag\"", "\"histogram\"", "\"client_limited\"", "\"client_cpu_seconds\"",
        "\"sent_rate\"", "\"connections_lost\"", "\"p9999\""}) {
    EXPECT_NE(text.str().find(field), std::string::npos) << field << " in " << text.str();
  }
  // Two workers of one open-loop run, merged.
  const std::vector<pb::LoadResult> parts =
      LoadWorkers(server.port(), {"--rate", "1000", "-d", "500ms", "--warmup", "0", "-c", "3"}, 2,
                  "part", std::chrono::seconds(3));
  const std::string merged = TempFile("merged.json");
  std::string output;
  ASSERT_EQ(
      RunBinary({"load", "merge", worker_json_[0], worker_json_[1], "--json", merged}, &output), 0)
      << output;
  const pb::LoadResult m = ReadResultFile(merged);
  EXPECT_EQ(m.requests(), parts[0].requests() + parts[1].requests());
  EXPECT_EQ(m.spec().protocol(), "grpc");
  EXPECT_EQ(m.processes(), 2u);
  Histogram expected = FromProto(parts[0].histogram());
  expected.Merge(FromProto(parts[1].histogram()));
  EXPECT_EQ(FromProto(m.histogram()).Buckets(), expected.Buckets());
}

TEST_F(GrpcLoadTest, LiveMetricsAndSweep) {
  ServerProcess server("grpc");
  const std::string scrape = ScrapeDuringARun(server.port());
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_requests_total{worker=\"0\",outcome=\"ok\"}"),
            0)
      << scrape;
  EXPECT_EQ(MetricValue(scrape, "switchyard_loadgen_target_rate{worker=\"0\"}"), 500) << scrape;
  EXPECT_GT(MetricValue(scrape, "switchyard_loadgen_latency_seconds_count{worker=\"0\"}"), 0)
      << scrape;

  // A lenient sweep: the peak first, then steps at half and all of it.
  const std::string sweep = TempFile("sweep.json");
  std::string output;
  ASSERT_EQ(RunBinary({"load", "--protocol", "grpc", "--port", std::to_string(server.port()),
                       "--sweep", "--sweep-steps", "2", "--slo", "99:5s", "-d", "300ms", "--warmup",
                       "0", "-c", "4", "-q", "--json", sweep},
                      &output),
            0)
      << output;
  EXPECT_NE(output.find("closed-loop peak"), std::string::npos) << output;
  EXPECT_NE(output.find("highest rate meeting"), std::string::npos) << output;
}

// --hold-idle keeps the channels open after the run: the server still counts them accepted, and
// the run takes the hold's time before it reports.
TEST_F(GrpcLoadTest, HoldIdleKeepsTheConnectionsOpenAfterTheRun) {
  ServerProcess server("grpc");
  const auto started = std::chrono::steady_clock::now();
  const pb::LoadResult result =
      Load(server.port(),
           {"-c", "20", "-n", "20", "--warmup", "0", "--mix", "ping", "--hold-idle", "1s"}, "hold");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(result.requests(), 20u);
  EXPECT_NE(last_output_.find("holding 20 idle connections"), std::string::npos) << last_output_;
  EXPECT_GE(
      MetricValue(ScrapeMetrics(server.metrics_port()), "switchyard_connections_accepted_total"),
      20);
}

TEST_F(GrpcLoadTest, BadInputGetsAOneLineError) {
  std::string output;
  EXPECT_EQ(RunBinary({"load", "--protocol", "http"}, &output), 2);
  EXPECT_NE(output.find("--protocol"), std::string::npos) << output;
  EXPECT_EQ(Lines(output), 1u) << output;
  EXPECT_EQ(RunBinary({"load", "--protocol", "grpc", "--mix", "sy.cpu"}, &output), 2);
  EXPECT_NE(output.find("--mix: 'sy.cpu'"), std::string::npos) << output;
  EXPECT_EQ(Lines(output), 1u) << output;
  EXPECT_EQ(RunBinary({"load", "--protocol", "grpc", "--sweep", "-n", "100"}, &output), 2);
  EXPECT_EQ(Lines(output), 1u) << output;
  EXPECT_EQ(RunBinary({"load", "--hold-idle", "1s"}, &output), 2);
  EXPECT_NE(output.find("--hold-idle needs --protocol grpc"), std::string::npos) << output;
  EXPECT_EQ(Lines(output), 1u) << output;
  EXPECT_EQ(RunBinary({"load", "--protocol", "grpc", "--hold-idle", "soon"}, &output), 2);
  EXPECT_EQ(Lines(output), 1u) << output;
  // Nothing listening: the kernel's reason, as in RESP mode.
  const std::uint16_t closed = FreeLoopbackPort();
  EXPECT_EQ(RunBinary({"load", "--protocol", "grpc", "--port", std::to_string(closed), "-d", "1s"},
                      &output),
            1);
  EXPECT_NE(output.find("cannot connect to 127.0.0.1:" + std::to_string(closed)), std::string::npos)
      << output;
  EXPECT_EQ(Lines(output), 1u) << output;
  // A RESP server: TCP connects, the HTTP/2 handshake does not.
  ServerProcess resp("coroutine");
  EXPECT_EQ(
      RunBinary({"load", "--protocol", "grpc", "--port", std::to_string(resp.port()), "-d", "1s"},
                &output),
      1);
  EXPECT_NE(output.find("not ready"), std::string::npos) << output;
  EXPECT_EQ(Lines(output), 1u) << output;
}

}  // namespace
}  // namespace switchyard::loadgen
