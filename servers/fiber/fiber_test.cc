// The fiber mechanism on its own: switching in and out, stacks that outlive many switches,
// exceptions on a fiber stack (which ASan follows only through the switch annotations), and a
// stack overflow reported as such.
#include "servers/fiber/fiber.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchyard {
namespace {

TEST(Fiber, SwitchesInAndOutUntilItReturns) {
  std::vector<std::string> trace;
  Fiber fiber(64 << 10, [&] {
    trace.push_back("fiber 1");
    Fiber::Current()->Suspend();
    trace.push_back("fiber 2");
    Fiber::Current()->Suspend();
    trace.push_back("fiber 3");
  });
  EXPECT_EQ(Fiber::Current(), nullptr);
  trace.push_back("main 1");
  EXPECT_TRUE(fiber.Resume());
  trace.push_back("main 2");
  EXPECT_TRUE(fiber.Resume());
  trace.push_back("main 3");
  EXPECT_FALSE(fiber.Resume()) << "the fiber returned";
  EXPECT_EQ(trace, (std::vector<std::string>{"main 1", "fiber 1", "main 2", "fiber 2", "main 3",
                                             "fiber 3"}));
}

TEST(Fiber, KeepsItsLocalsAcrossSwitchesAndInterleaves) {
  constexpr int kFibers = 1000, kRounds = 5;
  std::vector<long> sums(kFibers, 0);
  std::vector<std::unique_ptr<Fiber>> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.push_back(std::make_unique<Fiber>(32 << 10, [&sums, i] {
      long local[64];  // on this fiber's own stack
      for (int j = 0; j < 64; ++j) local[j] = i;
      for (int round = 0; round < kRounds; ++round) {
        Fiber::Current()->Suspend();
        for (int j = 0; j < 64; ++j) sums[i] += local[j];
      }
    }));
  }
  for (int round = 0; round <= kRounds; ++round) {
    for (auto& fiber : fibers) EXPECT_EQ(fiber->Resume(), round < kRounds);
  }
  for (int i = 0; i < kFibers; ++i) EXPECT_EQ(sums[i], 64L * i * kRounds) << i;
}

TEST(Fiber, ExceptionsStayOnTheirFiber) {
  int caught = 0;
  Fiber fiber(64 << 10, [&] {
    for (int i = 0; i < 3; ++i) {
      try {
        Fiber::Current()->Suspend();
        throw std::runtime_error("thrown on a fiber stack");
      } catch (const std::runtime_error&) {
        ++caught;
      }
    }
  });
  while (fiber.Resume()) {
  }
  EXPECT_EQ(caught, 3);
}

int Recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return depth > 1'000'000 ? frame[0] : Recurse(depth + 1) + frame[0];
}

TEST(FiberDeathTest, StackOverflowIsReportedNotSilent) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        InstallStackOverflowReporter();
        Fiber fiber(16 << 10, [] { Recurse(0); });
        fiber.Resume();
      },
      "fiber stack overflow.*raise --stack-kb");
}

}  // namespace
}  // namespace switchyard
