// One store shared by threads and by forked processes, none of them dying: INCR stays exact,
// writes to different shards share the allocator safely, values are never torn, and a multi-key
// write is seen whole. Deaths mid-update: store_crash_test.cc.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "servers/common/store.h"
#include "servers/common/store_test_util.h"

namespace switchyard::store_test {
namespace {

// MSET's keys change together: a reader taking MGET of the same keys never sees them differ,
// across shards.
TEST(StoreTest, MultiSetIsAtomicForMultiGet) {
  auto store = Store::Create(16 * kMiB);
  const std::vector<std::string_view> keys = {"x", "y", "z", "w", "v", "u"};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      const std::string value = std::to_string(i);
      std::vector<std::pair<std::string_view, std::string_view>> pairs;
      for (auto key : keys) pairs.emplace_back(key, value);
      ASSERT_EQ(store->MultiSet(pairs, false), Status::kOk);
    }
    done = true;
  });
  std::vector<std::optional<std::string>> values;
  int reads = 0;
  while (!done && reads < 1'000'000) {
    store->MultiGet(keys, &values);
    ++reads;
    for (const auto& value : values) ASSERT_EQ(value, values[0]);
  }
  writer.join();
  EXPECT_GT(reads, 0);
}

TEST(StoreTest, ConcurrentIncrFromThreads) {
  auto store = Store::Create(4 * kMiB);
  constexpr int kThreads = 8, kIncrs = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::int64_t result;
      for (int i = 0; i < kIncrs; ++i) ASSERT_EQ(store->Incr("n", 1, &result), Status::kOk);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(Read(*store, "n"), std::to_string(kThreads * kIncrs));
}

// Threads writing different shards still share the segment allocator; it must lock on its own.
TEST(StoreTest, ConcurrentWritesToDifferentShards) {
  auto store = Store::Create(32 * kMiB);
  constexpr int kThreads = 8, kOps = 3000, kKeysPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string value;
      for (int i = 0; i < kOps; ++i) {
        const std::string key = std::to_string(t) + ":" + std::to_string(i % kKeysPerThread);
        const std::string expected(i * 37 % 3000, static_cast<char>(i));
        ASSERT_EQ(store->Set(key, expected), Status::kOk);
        ASSERT_EQ(store->Get(key, &value), Status::kOk);
        ASSERT_EQ(value, expected);
        if (i % 3 == 0 && i < kOps - kKeysPerThread) {  // The last round leaves every key set.
          ASSERT_TRUE(store->Del(key));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store->key_count(), static_cast<std::size_t>(kThreads * kKeysPerThread));
}

// The reason the store exists: processes forked after Create share every key.
TEST(StoreTest, ForkedChildrenShareTheStore) {
  auto store = Store::Create(16 * kMiB);
  constexpr int kChildren = 4, kIncrs = 10000, kKeysPerChild = 200;
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      bool ok = true;
      std::int64_t result;
      for (int i = 0; i < kIncrs; ++i) ok &= store->Incr("shared", 1, &result) == Status::kOk;
      for (int k = 0; k < kKeysPerChild; ++k) {
        const std::string key = "child:" + std::to_string(c) + ":" + std::to_string(k);
        ok &= store->Set(key, key + "=value") == Status::kOk;
      }
      _exit(ok ? 0 : 1);  // Skip gtest and destructors in the child.
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  EXPECT_EQ(Read(*store, "shared"), std::to_string(kChildren * kIncrs));
  for (int c = 0; c < kChildren; ++c) {
    for (int k = 0; k < kKeysPerChild; ++k) {
      const std::string key = "child:" + std::to_string(c) + ":" + std::to_string(k);
      EXPECT_EQ(Read(*store, key), key + "=value");
    }
  }
  EXPECT_EQ(store->key_count(), 1u + kChildren * kKeysPerChild);
}

TEST(StoreTest, LargeValuesAreNeverTorn) {
  auto store = Store::Create(32 * kMiB, 4);
  constexpr std::size_t kSize = 64 * 1024;
  constexpr int kWriters = 3, kWrites = 300, kReaders = 3;
  std::atomic<int> writers_left{kWriters};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kWrites; ++i) {
        // Alternate sizes too, so both the in-place and the reallocating paths race with readers.
        const std::string value(kSize - (i % 2), static_cast<char>(w * kWrites + i));
        EXPECT_EQ(store->Set("hot", value), Status::kOk);
        EXPECT_EQ(store->Set("hot" + std::to_string(i % 8), value), Status::kOk);
      }
      --writers_left;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      std::string value;
      while (writers_left > 0) {
        if (store->Get("hot", &value) != Status::kOk) continue;
        ASSERT_GE(value.size(), kSize - 1);
        ASSERT_EQ(value.find_first_not_of(value[0]), std::string::npos) << "torn read";
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace
}  // namespace switchyard::store_test
