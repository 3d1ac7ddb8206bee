// The grpc model's graceful stop and a failing call, through the real binary and a real gRPC
// client: the same contract as the RESP models' (tests/stop_test.cc, servers/common/
// open_connections.h) in gRPC's terms, where a call rather than a connection is what is owed a
// reply and what fails.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proto/kv.grpc.pb.h"
#include "servers/grpc/grpc_test_client.h"
#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

using namespace std::chrono_literals;

class GrpcStop : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(const std::vector<std::string>& flags, const ServerOptions& options = {}) {
    stub_.reset();
    server_.reset();
    server_ = std::make_unique<ServerProcess>("grpc", flags, options);
    stub_ = kv::Kv::NewStub(Connect(server_->port()));
  }
  grpc::Status Wait(kv::Kv::Stub& stub, std::int64_t micros) {
    kv::WorkRequest request;
    request.set_kind(kv::WorkRequest::WAIT);
    request.set_micros(micros);
    kv::WorkReply reply;
    return stub.Work(Call().get(), request, &reply);
  }
  grpc::Status Echo(const std::string& message, std::string* echoed) {
    kv::EchoRequest request;
    request.set_message(message);
    kv::EchoReply reply;
    const grpc::Status status = stub_->Echo(Call().get(), request, &reply);
    *echoed = reply.message();
    return status;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<kv::Kv::Stub> stub_;
};

// SIGTERM while clients keep calling: every call the server took is answered in full and the
// server exits cleanly. Calls that reach it after the signal are refused, never cut off: gRPC
// answers UNAVAILABLE for a stream it refuses outright, and CANCELLED for one that arrived but
// was never handed to a method (a unary call is handed over only once its whole request is in).
TEST_F(GrpcStop, SigtermAnswersCallsInFlight) {
  constexpr int kClients = 8;
  const std::string payload(256 << 10, 'p');
  std::atomic<int> answered{0}, refused{0}, wrong{0};  // refused: never run
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      auto stub = kv::Kv::NewStub(Connect(server_->port()));
      kv::EchoRequest request;
      request.set_message(payload);
      while (!stop) {
        kv::EchoReply reply;
        const grpc::Status status = stub->Echo(Call().get(), request, &reply);
        if (status.ok() && reply.message() == payload) {
          ++answered;
        } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                   status.error_code() == grpc::StatusCode::CANCELLED) {
          ++refused;
          return;  // the server is gone or going: this client is done
        } else {
          ++wrong;
          ADD_FAILURE() << status.error_code() << ": " << status.error_message();
          return;
        }
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (answered < 4 * kClients && wrong == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(server_->Stop(SIGTERM, 15s), 0) << "clean exit after the drain";
  stop = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(answered.load(), 4 * kClients);
}

// A call still running at the drain deadline (--shutdown-timeout) is abandoned: the server exits
// 1, after the deadline and not before, and a call in flight at the signal that ends in time is
// still answered.
TEST_F(GrpcStop, DrainPastTheDeadlineExitsOneAndOthersAreAnswered) {
  Start({"--shutdown-timeout", "1"}, {.environment = {}, .capture_stderr = true});
  std::atomic<bool> long_call_answered{false};
  std::thread long_call([&] {
    auto stub = kv::Kv::NewStub(Connect(server_->port()));
    long_call_answered = Wait(*stub, 30'000'000).ok();
  });
  grpc::Status short_status;
  std::thread short_call([&] {
    auto stub = kv::Kv::NewStub(Connect(server_->port()));
    std::this_thread::sleep_for(200ms);
    short_status = Wait(*stub, 300'000);  // in flight across the signal
  });
  std::this_thread::sleep_for(300ms);
  const auto signalled = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(SIGTERM, 10s), 1) << "exit status after a drain that timed out";
  const auto took = std::chrono::steady_clock::now() - signalled;
  short_call.join();
  long_call.join();
  EXPECT_TRUE(short_status.ok()) << short_status.error_message();
  EXPECT_FALSE(long_call_answered);
  EXPECT_GE(took, 900ms) << "stopped before --shutdown-timeout";
  EXPECT_LT(took, 8s);
  EXPECT_NE(server_->stderr_text().find("calls still in flight after 1s"), std::string::npos)
      << server_->stderr_text();
}

// An exception escaping a call's handling (the test hook makes Echo throw, as running out of
// memory would) fails that call with INTERNAL, is counted and logged; the same connection and every
// other call go on, and the stop still drains and exits 0.
TEST_F(GrpcStop, ExceptionFailsOnlyItsCall) {
  Start({}, {.environment = {"SWITCHYARD_TEST_FAIL_ECHO=boom"}, .capture_stderr = true});
  std::string echoed;
  const grpc::Status failed = Echo("boom", &echoed);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL) << failed.error_message();
  EXPECT_NE(failed.error_message().find("ECHO boom failed"), std::string::npos);
  ASSERT_TRUE(Echo("fine", &echoed).ok()) << "the same channel goes on";
  EXPECT_EQ(echoed, "fine");
  EXPECT_EQ(AwaitMetricAtLeast(server_->metrics_port(), "switchyard_connections_failed_total", 1),
            1);
  EXPECT_NE(server_->stderr_text().find("ECHO boom failed"), std::string::npos)
      << server_->stderr_text();
  EXPECT_EQ(server_->Stop(SIGTERM, 5s), 0) << "the failed call does not hold the drain";
}

TEST_F(GrpcStop, SigtermStopsAServerWithIdleClients) {
  kv::EchoRequest echo;
  kv::EchoReply echoed;
  ASSERT_TRUE(stub_->Echo(Call().get(), echo, &echoed).ok());  // a connection, now idle
  EXPECT_EQ(server_->Stop(SIGTERM, 5s), 0);
}

}  // namespace
}  // namespace switchyard::testing
